"""Write the weekly report or the daily flash to disk, and email it to its recipient groups exactly once.

Files, kept per run under ``<reports_dir>/<as_of_date>/<kind>/`` (``kind``: ``weekly`` or ``flash``), one set per
language: ``finance_<kind>_<as_of>_<lang>.html`` (standalone: its charts are inlined as data URIs, so the file
opens on its own), ``finance_<kind>_<as_of>_<lang>.xlsx`` and ``charts/<chart>_<lang>.png``. Rewriting a date
replaces its files (they are derived data); each is written whole or not at all.

Email (:func:`send_finance_outputs`): each recipient group of ``settings.report_recipients`` that receives the
kind gets one email in its own language: the HTML body (its charts as inline attachments referenced by
``cid:``), a plain-text part with the key figures, the workbook attached. The message goes through the send
ledger of relance's own emails (``settings.notification_ledger``) under the key
``finance-<kind>-<as_of>-<group>``: claimed before the transport is called, marked sent with the provider's id
or the outbox file. A rerun, a retry or a second flow (the weekly deployment after a Monday daily run) finds it
sent and sends nothing; a send whose outcome is unknown stays in flight and is never repeated blindly (the
pattern of :func:`relance.risk.alerts.notify`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sendgrid.helpers.mail import (
    Attachment,
    Category,
    Content,
    ContentId,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Mail,
    MimeType,
    Subject,
    To,
)

from relance.files import write_bytes_atomic, write_text_atomic
from relance.reports import i18n
from relance.reports.finance_charts import chart_png
from relance.reports.finance_html import data_uri, render_html
from relance.reports.finance_pack import FinancePack
from relance.reports.finance_tables import FinanceDocument, Kind, build_document, markdown
from relance.reports.finance_xlsx import workbook_bytes

log = logging.getLogger(__name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class FinanceOutputs:
    """What one kind of report wrote for one as-of date, per language."""

    kind: Kind
    as_of_date: date
    directory: Path
    html: dict[str, Path]
    xlsx: dict[str, Path]
    charts: dict[str, dict[str, Path]]
    documents: dict[str, FinanceDocument] = field(repr=False)
    summary_rows: list[dict[str, Any]] = field(default_factory=list)

    def paths(self) -> dict[str, str]:
        """Every file, by a stable name (``html_fr``, ``xlsx_en``, ``chart_dso_fr``...), for ``ops.report_runs``."""
        out = {f"html_{lang}": str(p) for lang, p in self.html.items()}
        out |= {f"xlsx_{lang}": str(p) for lang, p in self.xlsx.items()}
        for lang, charts in self.charts.items():
            out |= {f"chart_{cid}_{lang}": str(p) for cid, p in charts.items()}
        return out

    def markdown(self, language: str) -> str:
        files = [str(self.html[language]), str(self.xlsx[language])]
        return markdown(self.documents[language], files=files)


def file_stem(kind: str, as_of_date: date, language: str) -> str:
    return f"finance_{kind}_{as_of_date.isoformat()}_{language}"


def write_finance_outputs(
    pack: FinancePack,
    kind: Kind,
    out_dir: Path,
    *,
    languages: Sequence[str] = i18n.LANGUAGES,
    generated_at: datetime | None = None,
) -> FinanceOutputs:
    """Build the ``kind`` document of ``pack`` in each language and write its HTML, workbook and charts under
    ``<out_dir>/<as_of>/<kind>/``."""
    directory = Path(out_dir) / pack.as_of_date.isoformat() / kind
    html: dict[str, Path] = {}
    xlsx: dict[str, Path] = {}
    charts: dict[str, dict[str, Path]] = {}
    documents: dict[str, FinanceDocument] = {}
    for language in languages:
        document = build_document(pack, kind, language, generated_at=generated_at)
        documents[language] = document
        stem = file_stem(kind, pack.as_of_date, language)
        pngs: dict[str, bytes] = {cid: chart_png(chart, language) for cid, chart in document.charts.items()}
        charts[language] = {}
        for cid, png in pngs.items():
            path = directory / "charts" / f"{cid}_{language}.png"
            write_bytes_atomic(path, png)
            charts[language][cid] = path
        xlsx[language] = directory / f"{stem}.xlsx"
        write_bytes_atomic(xlsx[language], workbook_bytes(document))
        html[language] = directory / f"{stem}.html"
        page = render_html(
            document, {cid: data_uri(png) for cid, png in pngs.items()}, attachments=[xlsx[language].name]
        )
        write_text_atomic(html[language], page)
    rows = list(documents[languages[0]].summary_rows) if languages else []
    log.info("finance %s for %s written to %s (%s)", kind, pack.as_of_date, directory, ", ".join(languages))
    return FinanceOutputs(kind, pack.as_of_date, directory, html, xlsx, charts, documents, rows)


# --- the email -----------------------------------------------------------------------------------------------------


def content_id(chart_id: str) -> str:
    """The Content-ID of a chart's inline image (``cid:<this>`` in the HTML)."""
    return f"chart-{chart_id}"


def notification_key(kind: str, as_of_date: date, group: str) -> str:
    """The ledger key of one email: ``finance-<kind>-<as_of>-<group>``; a group name that is not a plain slug
    is replaced by a short hash of it (the key names a file in the outbox)."""
    slug = group if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", group) else hashlib.sha256(group.encode()).hexdigest()[:16]
    return f"finance-{kind}-{as_of_date.isoformat()}-{slug}"


def plain_text(document: FinanceDocument, attachment: str | None) -> str:
    """The email's text part: the title, the key figures per currency, what is attached."""
    lang = document.language
    lines = [document.title, "", document.intro, ""]
    lines += [f"! {b}" for b in document.banners]
    for currency in document.currencies:
        lines += ["", f"[{currency}]"]
        lines += [f"- {k.label} : {k.texts[currency]}" if lang == "fr" else f"- {k.label}: {k.texts[currency]}"
                  for k in document.key_figures]  # fmt: skip
    for section in document.sections:
        if section.unavailable:
            lines += ["", f"{section.title}: {section.unavailable}"]
    if attachment:
        lines += ["", i18n.t(lang, "attachments", name=attachment)]
    return "\n".join(lines) + "\n"


def build_finance_mail(
    outputs: FinanceOutputs,
    language: str,
    *,
    sender_email: str,
    sender_name: str,
    recipients: Sequence[str],
    key: str,
    flow_run_id: str | None,
) -> Mail:
    """One group's email: HTML with ``cid:`` images (the PNGs attached inline with those Content-IDs), a text
    part, the workbook attached. Only opaque ids in custom args (SendGrid stores them as non-PII)."""
    if not recipients:
        raise ValueError(f"no recipients for the finance {outputs.kind} email {key}")
    document = outputs.documents[language]
    charts = outputs.charts.get(language, {})
    xlsx = outputs.xlsx[language]
    mail = Mail(from_email=From(sender_email, sender_name), to_emails=[To(r) for r in recipients])
    mail.subject = Subject(document.subject)
    body = render_html(document, {cid: f"cid:{content_id(cid)}" for cid in charts}, attachments=[xlsx.name])
    mail.content = [Content(MimeType.text, plain_text(document, xlsx.name)), Content(MimeType.html, body)]
    attachments = [
        Attachment(
            FileContent(base64.b64encode(path.read_bytes()).decode("ascii")),
            FileName(path.name),
            FileType("image/png"),
            Disposition("inline"),
            ContentId(content_id(cid)),
        )
        for cid, path in charts.items()
    ]
    attachments.append(
        Attachment(
            FileContent(base64.b64encode(xlsx.read_bytes()).decode("ascii")),
            FileName(xlsx.name),
            FileType(XLSX_TYPE),
            Disposition("attachment"),
        )
    )
    mail.attachment = attachments
    args = {"reminder_key": key} | ({"flow_run_id": flow_run_id} if flow_run_id else {})
    mail.custom_arg = [CustomArg(k, v, p=0) for k, v in args.items()]
    mail.category = [Category("relance"), Category(f"finance_{outputs.kind}")]
    return mail


@dataclass(frozen=True)
class Delivery:
    """What happened to one group's email: ``sent``, ``already_sent``, ``in_flight`` (held or left in doubt by
    another run: never resent blindly) or ``failed`` (``error``; the next run tries again)."""

    group: str
    key: str
    language: str
    status: str
    outbox_path: str | None = None
    provider_message_id: str | None = None
    error: str | None = None


class FinanceDeliveryError(RuntimeError):
    """Some groups' emails did not go out or have an unknown outcome (the others went; a rerun sends only the
    failed ones, never one in doubt)."""

    def __init__(self, deliveries: Sequence[Delivery]) -> None:
        failed = [d for d in deliveries if d.error]
        super().__init__(
            "finance email not sent to " + "; ".join(f"group {d.group!r} ({d.key}): {d.error}" for d in failed)
        )
        self.deliveries = list(deliveries)


def send_finance_outputs(
    outputs: FinanceOutputs,
    groups: Mapping[str, Any],
    *,
    ledger: Any,
    transport: Any,
    sender_email: str,
    sender_name: str,
    flow_run_id: str | None,
    now: datetime,
) -> list[Delivery]:
    """Email ``outputs`` to each group (``name -> RecipientGroup``: ``emails``, ``language``) exactly once per
    (kind, as-of date, group). Every group is tried; failures are returned (``status='failed'``), not raised."""
    deliveries = []
    for name in sorted(groups):
        group = groups[name]
        language = i18n.check_language(group.language)
        key = notification_key(outputs.kind, outputs.as_of_date, name)
        status = ledger.statuses([key]).get(key, (None, 0))[0]
        if status == "sent":
            deliveries.append(Delivery(name, key, language, "already_sent"))
            continue
        if language not in outputs.documents:
            raise ValueError(f"the finance {outputs.kind} was not written in {language!r} (group {name!r})")
        mail = build_finance_mail(
            outputs,
            language,
            sender_email=sender_email,
            sender_name=sender_name,
            recipients=list(group.emails),
            key=key,
            flow_run_id=flow_run_id,
        )
        attempts = ledger.claim(
            key,
            "email",
            flow_run_id=flow_run_id,
            step=f"finance_{outputs.kind}",
            recipient=",".join(group.emails),
            at=now,
        )
        if attempts is None:  # in flight elsewhere, or left 'sending' by a crash or an unknown outcome
            deliveries.append(Delivery(name, key, language, "in_flight"))
            continue
        try:
            result = transport.send(mail, key)
        except Exception as exc:  # noqa: BLE001 - recorded in the ledger, reported, and raised by the caller
            unknown = bool(getattr(exc, "outcome_unknown", False) or getattr(exc, "ambiguous", False))
            error = f"{type(exc).__name__}: {exc}"
            ledger.failed(
                key, "email", error, attempts + 1,
                status="sending" if unknown else "failed", flow_run_id=flow_run_id, at=now,
            )  # fmt: skip
            log.error("finance %s email to group %s failed: %s", outputs.kind, name, error)
            deliveries.append(Delivery(name, key, language, "in_flight" if unknown else "failed", error=error))
            continue
        ledger.sent(
            key,
            provider_message_id=result.provider_message_id,
            outbox_path=str(result.outbox_path) if result.outbox_path else None,
            attempts=attempts + 1,
            at=now,
            flow_run_id=flow_run_id,
        )
        deliveries.append(
            Delivery(
                name,
                key,
                language,
                "sent",
                outbox_path=str(result.outbox_path) if result.outbox_path else None,
                provider_message_id=result.provider_message_id,
            )
        )
    return deliveries
