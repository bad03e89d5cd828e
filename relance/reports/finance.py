"""The finance report: aged balance (with a chart), DSO per currency, top exposures at risk.

Inputs are the dbt serving relations (``serving.report_aged_balance``, ``serving.report_dso``,
``serving.report_at_risk_exposure``) read by the flow: every number is computed in SQL, this module only lays
them out. Output goes to ``<out_dir>/<as_of_date>/``: one CSV per input (for spreadsheets) and one HTML file
with everything inlined (the chart is a base64 PNG), so it can be mailed or archived as a single file.
The CSVs are written by :mod:`relance.tabular_output` (a customer name that starts like a formula is written as
text with a leading apostrophe, numbers stay numbers); the HTML template is autoescaped. Amounts are never summed
across currencies: the at-risk exposure is one table per currency, each ranked within its currency. Machine keys
(``not_due``, ``1-30``...) stay in the CSVs and the summary; only the HTML and the chart show the French labels of
``BUCKET_LABELS``.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from relance.channels.email import format_date
from relance.files import write_text_atomic
from relance.tabular_output import write_csv

log = logging.getLogger(__name__)

# The aging buckets of serving.report_aged_balance in their order, each with what a reader sees in the HTML and
# on the chart. The keys stay in the CSVs, the summary and the SQL (finance tools read them).
BUCKET_LABELS: dict[str, str] = {
    "not_due": "Non échu",
    "1-30": "1 à 30 j",
    "31-60": "31 à 60 j",
    "61-90": "61 à 90 j",
    "90+": "Plus de 90 j",
}
BUCKETS: tuple[str, ...] = tuple(BUCKET_LABELS)
CURRENCY_SYMBOLS: dict[str, str] = {"EUR": "€", "USD": "$", "GBP": "£"}
BUCKET_COLOURS: tuple[str, ...] = ("#4c9a5b", "#c8b43c", "#e08a2c", "#d2562b", "#a11d21")
TEMPLATE = "finance_report.html.j2"
HTML_NAME = "finance_report.html"

AGED_COLUMNS = ("currency", "aging_bucket", "invoice_count", "open_amount")
DSO_COLUMNS = ("currency", "receivables", "sales_90d", "dso_days")
AT_RISK_COLUMNS = (
    "invoice_id",
    "customer_id",
    "customer_name",
    "currency",
    "open_amount",
    "days_overdue",
    "p_late",
    "target_name",
    "risk_grade",
    "predicted_payment_date",
    "reason_1",
    "expected_at_risk",
    "risk_rank",
)
_TARGET_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # (target_name pattern, column heading, what it means), the names of models.contract.target_name
    (re.compile(r"late_any"), "P(retard)", "Probabilité d’être payée après l’échéance (ou pas du tout)"),
    (
        re.compile(r"late_over_(\d+)d"),
        "P(retard > {0} j)",
        "Probabilité d’être payée plus de {0} jours après l’échéance (ou pas du tout)",
    ),
    (
        re.compile(r"unpaid_(\d+)d_after_due"),
        "P(impayée à {0} j)",
        "Probabilité d’être encore impayée {0} jours après l’échéance (ou après aujourd’hui si elle est dépassée)",
    ),
    (
        re.compile(r"unpaid_(\d+)d_after_as_of"),
        "P(impayée dans {0} j)",
        "Probabilité d’être encore impayée dans {0} jours",
    ),
)


@dataclass(frozen=True)
class FinanceReport:
    """Where the report was written and a short summary (one row per currency) for a table artifact.

    ``html_path`` and ``csv_paths``: the daily report of this module. ``html_paths`` and ``xlsx_paths``: the
    daily flash and the weekly report (:mod:`relance.reports.finance_outputs`), by ``<kind>_<language>``
    (``flash_fr``, ``weekly_en``...); ``emails``: what happened to each recipient group's email, by
    ``<kind>:<group>`` (``sent``, ``already_sent``, ``in_flight``, ``failed``)."""

    html_path: Path
    csv_paths: dict[str, Path]
    summary_rows: list[dict[str, Any]] = field(default_factory=list)
    html_paths: dict[str, Path] = field(default_factory=dict)
    xlsx_paths: dict[str, Path] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    #: the weekly report's cash-in forecast backtest, per currency: WAPE beside its baselines (empty on other days)
    forecast_wape: dict[str, str] = field(default_factory=dict)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], relation: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{relation} frame is missing columns {missing}; has {list(frame.columns)}")


def _day(value: Any) -> str:
    """``31/03/2026``, blank when unknown: the email channel's own date format."""
    return format_date(value) or ""


def _alert_rows(alerts: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Alerts for the HTML: the notice's permalink (``... Avis : URL`` at the end of a detail) becomes a link."""
    if alerts is None or alerts.empty:
        return []
    rows = []
    for r in alerts.to_dict("records"):
        detail, _, url = str(r["detail"]).partition(" Avis : ")
        rows.append(
            {
                "type": str(r["alert_type"]),
                "title": str(r["title"]),
                "detail": detail,
                "url": url.strip() if url.strip().startswith("https://") else None,
                "due": _day(r.get("due_date")),
                "raised": _day(r.get("as_of_date")),
            }
        )
    return rows


def _claim_rows(claims: pd.DataFrame | None) -> list[dict[str, str]]:
    if claims is None or claims.empty:
        return []
    return [
        {
            "customer": str(r.get("customer_name") or r.get("customer_id")),
            "procedure": str(r.get("procedure_kind") or ""),
            "court": str(r.get("court") or ""),
            "published": _day(r.get("published_date")),
            "deadline": _day(r.get("deadline_date")),
            "days": "" if pd.isna(r.get("days_to_deadline")) else str(int(r["days_to_deadline"])),
            "due": _money(r.get("amount_due"), r.get("currency")),
            "not_yet_due": _money(r.get("amount_not_yet_due"), r.get("currency")),
            "status": "à déclarer" if r.get("status") == "to_declare" else "délai dépassé",
            "late": r.get("status") != "to_declare",
        }
        for r in claims.to_dict("records")
    ]


def _money(value: Any, currency: str | None = None, decimals: int = 2) -> str:
    """``1 234,56 €``-style French formatting (narrow no-break space between thousands, comma for decimals,
    symbol after a no-break space); blank for missing values. ``decimals=0`` for the chart."""
    if value is None or pd.isna(value):
        return ""
    number = float(value)
    if round(number, decimals) == 0:
        number = 0.0  # no "-0"
    text = f"{number:,.{decimals}f}".replace(",", "\u202f").replace(".", ",").replace("-", "\u2212")
    symbol = CURRENCY_SYMBOLS.get((currency or "").upper(), currency or "")
    return f"{text}\u00a0{symbol}".strip()


def _number(value: Any, digits: int = 1) -> str:
    if value is None or pd.isna(value):
        return "n/d"
    return f"{float(value):.{digits}f}".replace(".", ",")


def _aged_pivot(aged: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(amounts, counts), currency x bucket, every bucket present in a fixed order."""
    frame = aged.assign(
        open_amount=pd.to_numeric(aged["open_amount"], errors="coerce").astype(float),
        invoice_count=pd.to_numeric(aged["invoice_count"], errors="coerce").fillna(0).astype(int),
    )
    unknown = set(frame["aging_bucket"]) - set(BUCKETS)
    if unknown:
        raise ValueError(f"aged balance has unknown aging buckets {sorted(unknown)}; expected {BUCKETS}")
    amounts = frame.pivot_table(
        index="currency", columns="aging_bucket", values="open_amount", aggfunc="sum", fill_value=0.0
    ).reindex(columns=list(BUCKETS), fill_value=0.0)
    counts = frame.pivot_table(
        index="currency", columns="aging_bucket", values="invoice_count", aggfunc="sum", fill_value=0
    ).reindex(columns=list(BUCKETS), fill_value=0)
    return amounts, counts


def _amount_formatter(currency: str) -> FuncFormatter:
    """Axis ticks as whole amounts in the report's format (``1\u202f200\u202f000 €``): a FuncFormatter has no
    offset and no scientific notation, so a ten-million balance never reads ``1e7``."""
    return FuncFormatter(lambda value, _pos: _money(value, currency, decimals=0))


def aged_balance_figure(amounts: pd.DataFrame, as_of_date: date) -> Figure | None:
    """Aged balance bars, one panel per currency (a currency x bucket-key frame, as from ``_aged_pivot``),
    buckets labelled in French, amounts on the y axis and above each bar. None when there is nothing to draw.
    Uses the Agg canvas directly (no pyplot), so no global backend state and no display is needed."""
    if amounts.empty:
        return None
    n = len(amounts.index)
    fig = Figure(figsize=(8, 2.8 * n), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    labels = [BUCKET_LABELS[b] for b in BUCKETS]
    for ax, currency in zip(axes, amounts.index, strict=True):
        values = amounts.loc[currency, list(BUCKETS)].to_numpy(dtype=float)
        bars = ax.bar(labels, values, color=BUCKET_COLOURS)
        ax.bar_label(bars, labels=[_money(v, currency, decimals=0) for v in values], fontsize=8, padding=2)
        ax.set_title(f"Encours par ancienneté ({currency}) au {as_of_date.isoformat()}", fontsize=10)
        ax.yaxis.set_major_formatter(_amount_formatter(str(currency)))
        ax.tick_params(axis="both", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(y=0.15)
    return fig


def _chart_png(amounts: pd.DataFrame, as_of_date: date) -> str | None:
    """The aged balance figure as base64 PNG, or None when there is nothing to draw."""
    fig = aged_balance_figure(amounts, as_of_date)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def target_heading(target_names: Any) -> tuple[str, str]:
    """(column heading, tooltip) of the probability column for the targets of the scores shown. Pure.

    One known target: its words (``late_over_5d`` -> ``P(retard > 5 j)``); none, several or an unknown name: a
    plain ``P(retard)`` whose tooltip names what is there, so a reader never takes one target for another.
    """
    names = sorted({str(t) for t in target_names if t is not None and not pd.isna(t)})
    if len(names) == 1:
        for pattern, heading, meaning in _TARGET_PATTERNS:
            match = pattern.fullmatch(names[0])
            if match:
                return heading.format(*match.groups()), f"{meaning.format(*match.groups())} ({names[0]})"
    if not names:
        return "P(retard)", "Probabilité de retard (cible non enregistrée avec ces scores)"
    return "P(retard)", f"Probabilité de retard selon la cible du modèle : {', '.join(names)}"


def _date_text(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).date().isoformat()


def _at_risk_tables(at_risk: pd.DataFrame, top_n: int | None) -> list[dict[str, Any]]:
    """One table per currency (sorted by code), rows by ``risk_rank`` within it, the first ``top_n`` of each:
    amounts in different currencies are never ranked against each other."""
    tables = []
    for currency, rows in at_risk.groupby("currency", sort=True):
        ranked = rows.sort_values(["risk_rank", "invoice_id"], kind="mergesort")
        if top_n is not None:
            ranked = ranked.head(top_n)
        tables.append(
            {
                "currency": str(currency),
                "rows": [
                    {
                        "risk_rank": int(r["risk_rank"]),
                        "invoice_id": r["invoice_id"],
                        "customer_name": r["customer_name"],
                        "open_amount": _money(r["open_amount"], r["currency"]),
                        "days_overdue": "" if pd.isna(r["days_overdue"]) else int(r["days_overdue"]),
                        "p_late": _number(r["p_late"], 2),
                        "risk_grade": "" if pd.isna(r["risk_grade"]) else str(r["risk_grade"]),
                        "predicted_payment_date": _date_text(r["predicted_payment_date"]),
                        "reason_1": "" if pd.isna(r["reason_1"]) else str(r["reason_1"]),
                        "expected_at_risk": _money(r["expected_at_risk"], r["currency"]),
                        "in_procedure": bool(r.get("has_open_procedure")) and not pd.isna(r.get("has_open_procedure")),
                    }
                    for r in ranked.to_dict("records")
                ],
            }
        )
    return tables


def _summary(amounts: pd.DataFrame, counts: pd.DataFrame, dso: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per currency, same keys in every row (a Prefect table artifact wants rectangular data)."""
    dso_by_ccy = dso.set_index("currency")["dso_days"] if not dso.empty else pd.Series(dtype=float)
    rows = []
    for currency in sorted(set(amounts.index) | set(dso_by_ccy.index)):
        row: dict[str, Any] = {"currency": str(currency)}
        for bucket in BUCKETS:
            row[bucket] = round(float(amounts.loc[currency, bucket]), 2) if currency in amounts.index else 0.0
        row["total_open"] = round(sum(row[b] for b in BUCKETS), 2)
        row["invoices"] = int(counts.loc[currency].sum()) if currency in counts.index else 0
        dso_value = dso_by_ccy.get(currency)
        row["dso_days"] = None if dso_value is None or pd.isna(dso_value) else round(float(dso_value), 1)
        rows.append(row)
    return rows


DECISION_LABELS: dict[str, str] = {
    "send": "relance envoyée",
    "wait": "en attente (étape suivante, délai, montant)",
    "pause": "en pause (promesse, litige)",
    "stop": "arrêt (procédure, ne pas contacter, injoignable)",
    "holdout": "groupe témoin (aucune relance)",
    "nothing_due": "rien à payer",
}
TONE_LABELS: dict[str, str] = {
    "preventive": "préventif",
    "cordial": "cordial",
    "firm": "ferme",
    "formal_notice": "mise en demeure",
}
CHANNEL_LABELS: dict[str, str] = {
    "email": "e-mail",
    "sms": "SMS",
    "letter": "courrier",
    "call": "appel",
    "no message": "traité sans message",
    "all (intention to treat)": "toutes relances (intention de traiter)",
}


def _pct(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if number != number else f"{number * 100:+.1f} pts".replace(".", ",")


def reminder_section(
    decisions: pd.DataFrame | None,
    planned: pd.DataFrame | None,
    blocks: pd.DataFrame | None,
    effect: pd.DataFrame | None,
) -> dict[str, Any]:
    """The report's "Relances" section: today's decisions (``ops.reminder_decisions``), the messages by channel
    and scenario (``ops.reminders_planned``), the sends the rules blocked, and the holdout effect
    (:func:`relance.reminders.experiment.holdout_effect` over ``serving.reminder_experiment_outcomes``)."""
    out: dict[str, Any] = {"decisions": [], "messages": [], "blocks": [], "effect": [], "effect_note": ""}
    if decisions is not None and not decisions.empty:
        counts = decisions.groupby(["decision", decisions["rule"].fillna("")]).size()
        for (decision, rule), n in counts.items():
            label = DECISION_LABELS.get(decision, decision)
            out["decisions"].append({"decision": label, "rule": rule, "n": int(n)})
    if planned is not None and not planned.empty:
        grouped = planned.assign(n_inv=planned["invoice_ids"].map(_invoice_count))
        keys = ["scenario", "channel", "tone", "currency"]
        for (scenario, channel, tone, currency), part in grouped.groupby(keys, dropna=False):
            out["messages"].append(
                {
                    "scenario": scenario or "-",
                    "channel": CHANNEL_LABELS.get(channel, channel),
                    "tone": TONE_LABELS.get(tone, tone),
                    "n": len(part),
                    "invoices": int(part["n_inv"].sum()),
                    "amount": _money(part["open_amount"].astype(float).sum(), str(currency)),
                }
            )
    if blocks is not None and not blocks.empty:
        for rule, n in blocks["rule"].value_counts().items():
            out["blocks"].append({"rule": rule, "n": int(n)})
    if effect is None or effect.empty or int(effect["n_holdout"].iloc[0]) == 0:
        out["effect_note"] = (
            "Pas encore de recul : l'effet se mesure 14 jours après l'entrée des clients dans un scénario, en "
            "comparant leur paiement à celui du groupe témoin tiré au sort."
        )
    else:
        for row in effect.to_dict("records"):
            out["effect"].append(
                {
                    "group": CHANNEL_LABELS.get(row["group"], row["group"]),
                    "treated": f"{row['paid_treated']}/{row['n_treated']}",
                    "holdout": f"{row['paid_holdout']}/{row['n_holdout']}",
                    "effect": _pct(row["effect"]),
                    "ci": f"[{_pct(row['ci_low'])} ; {_pct(row['ci_high'])}]",
                }
            )
    return out


def _invoice_count(value: Any) -> int:
    try:
        return len(json.loads(value)) if isinstance(value, str) and value else 1
    except ValueError:
        return 1


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("relance.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def write_finance_report(
    aged: pd.DataFrame,
    dso: pd.DataFrame,
    at_risk: pd.DataFrame,
    *,
    as_of_date: date,
    out_dir: Path,
    model_version: str | None,
    flow_run_id: str | None,
    top_n: int | None = None,
    model_note: str | None = None,
    alerts: pd.DataFrame | None = None,
    claims: pd.DataFrame | None = None,
    stale_sources: dict[str, str] | None = None,
    reminders: dict[str, Any] | None = None,
) -> FinanceReport:
    """Write ``aged_balance.csv``, ``dso.csv``, ``at_risk.csv`` and ``finance_report.html`` to
    ``<out_dir>/<as_of_date>/``. Rewriting the same day replaces the files (reports are derived data).

    ``at_risk`` is written as given to the CSV; the HTML shows one table per currency ordered by ``risk_rank``
    (ranked within currency by ``serving.report_at_risk_exposure``), the first ``top_n`` rows of each if given,
    with the customer's risk grade, the predicted payment date and the main reason.

    ``model_note``: why no model was trained for this run (``models.train.TrainResult.reason`` when
    ``trained`` is False: the champion was kept, or a baseline serves). The report then opens with a banner
    saying so, since its probabilities do not come from a model fitted on today's data.

    Company-risk sections: ``alerts`` (``ops.risk_alerts`` raised in the last days: title, detail, due date),
    ``claims`` (``serving.claim_declarations``: the claims to declare, also written to ``claims.csv``) and
    ``stale_sources`` (source -> since when it has no good answer: a banner says the risk data may be out of date).
    ``reminders``: the "Relances" section (:func:`reminder_section`), left out when None.
    """
    _require(aged, AGED_COLUMNS, "report_aged_balance")
    _require(dso, DSO_COLUMNS, "report_dso")
    _require(at_risk, AT_RISK_COLUMNS, "report_at_risk_exposure")
    target = Path(out_dir) / as_of_date.isoformat()
    target.mkdir(parents=True, exist_ok=True)

    csv_paths: dict[str, Path] = {}
    for name, frame in (("aged_balance", aged), ("dso", dso), ("at_risk", at_risk)):
        csv_paths[name] = write_csv(frame, target / f"{name}.csv")
    if claims is not None and not claims.empty:
        csv_paths["claims"] = write_csv(claims, target / "claims.csv")

    amounts, counts = _aged_pivot(aged)
    context = {
        "as_of_date": as_of_date.isoformat(),
        "model_version": model_version,
        "flow_run_id": flow_run_id,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "buckets": [{"key": b, "label": BUCKET_LABELS[b]} for b in BUCKETS],
        "top_n": top_n,
        "chart_png": _chart_png(amounts, as_of_date),
        "aged_rows": [
            {
                "currency": ccy,
                "amounts": {b: _money(amounts.loc[ccy, b], ccy) for b in BUCKETS},
                "counts": {b: f"{int(counts.loc[ccy, b]):,}".replace(",", "\u202f") for b in BUCKETS},
                "total": _money(amounts.loc[ccy].sum(), ccy),
            }
            for ccy in amounts.index
        ],
        "dso_rows": [
            {
                "currency": r["currency"],
                "receivables": _money(r["receivables"], r["currency"]),
                "sales_90d": _money(r["sales_90d"], r["currency"]),
                "dso_days": _number(r["dso_days"]),
            }
            for r in dso.sort_values("currency").to_dict("records")
        ],
        "at_risk_tables": _at_risk_tables(at_risk, top_n),
        "p_heading": target_heading(at_risk["target_name"])[0],
        "p_title": target_heading(at_risk["target_name"])[1],
        "model_note": (model_note or "").strip() or None,
        "csv_names": [p.name for p in csv_paths.values()],
        "stale_sources": sorted((stale_sources or {}).items()),
        "alert_rows": _alert_rows(alerts),
        "claim_rows": _claim_rows(claims),
        "reminders": reminders,
    }
    html_path = target / HTML_NAME
    write_text_atomic(html_path, _environment().get_template(TEMPLATE).render(**context))
    summary = _summary(amounts, counts, dso)
    log.info("finance report for %s written to %s (%d currencies)", as_of_date, html_path, len(summary))
    return FinanceReport(html_path=html_path, csv_paths=csv_paths, summary_rows=summary)
