"""Paper letters as PDF (ReportLab platypus), and the late-payment penalties a formal notice to a business states.

A letter says what the email says (:func:`relance.channels.email.render_reminder`: the wording by tone and
language, the statement of account of a grouped reminder), laid out for a window envelope: the sender top left,
the debtor's postal address (``address_line1``, ``address_line2``, ``postal_code``, ``city``, ``country_code`` of
the planned row, carried from ``serving.collection_worklist``) on the right, the date, the subject, the body. When
the row has no usable address the letter still renders, with a red "adresse postale manquante" warning where the
address goes, so the mail room completes it from the customer record instead of posting a letter nobody delivers.

Formal notice (``tone='formal_notice'``) to a professional debtor (``customer_type='B2B'``): a table of the
penalties of Code de commerce L441-10 and of the fixed recovery indemnity of D441-5, per invoice.

* Penalties run from the day after the invoice's due date to the letter's date, both included (an invoice due on
  15 May has 97 days of penalties on 20 August), as simple interest on the amount still open (tax included), exact
  days over 365.
* The annual rate is the ECB's main refinancing rate in force on 1 January for days of the first half-year, on
  1 July for days of the second, plus ``margin_points`` (setting ``late_penalty_margin_points``, 10 by default):
  a period crossing 30 June or 31 December is split there and each part carries its own rate.
* Each invoice's penalties are the exact sum of its parts, rounded once to the cent (half up); the totals add the
  rounded lines, so the table adds up.
* The fixed indemnity (setting ``recovery_indemnity_eur``, 40 euros) is due once per invoice paid late, in euros
  whatever the invoice's currency (a non-euro statement shows it beside, never inside, its currency's total).

The ECB rates are data (``ecb_rates.yaml`` beside this module, sourced and dated there): :func:`load_ecb_rates`
reads it into :class:`EcbRates`. A half-year whose 1 January / 1 July precedes the table is an
:class:`EcbRateError` (no letter rather than a wrong figure); one after the table's ``verified_through`` date uses
the last rate known, logs a warning and marks the rate "à vérifier" in the letter, for an operator to confirm.

A consumer (``B2C``) formal notice has none of that: no indemnity, no L441-10 penalties; the body from the email
says, courteously, that legal-rate interest runs from the notice (Code civil 1231-6), with no figure.

Every value from the data (names, addresses, invoice numbers) is escaped before ReportLab's paragraph markup reads
it, so a customer called ``<b>`` is printed as written. The font is Bitstream Vera, shipped inside ReportLab (the
same glyphs everywhere; it has the euro sign and French accents), and documents are built in ReportLab's
invariant mode: the same row gives the same bytes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
import yaml
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from relance.channels.email import (
    Statement,
    StatementLine,
    format_amount,
    format_date,
    parse_statement,
    render_reminder,
)

log = logging.getLogger(__name__)

#: The rate table shipped with relance (see the module docstring).
ECB_RATES_RESOURCE = "ecb_rates.yaml"
#: Day-count basis of the penalties: exact days over 365.
DAYS_PER_YEAR = Decimal(365)
CENT = Decimal("0.01")
#: Country names for the last line of a foreign address, in French (the Universal Postal Union asks for the
#: destination country in the language of the country of posting); an unknown code is written as is.
COUNTRY_NAMES_FR: dict[str, str] = {
    "GB": "ROYAUME-UNI",
    "BE": "BELGIQUE",
    "CH": "SUISSE",
    "LU": "LUXEMBOURG",
    "MC": "MONACO",
    "DE": "ALLEMAGNE",
    "ES": "ESPAGNE",
    "IT": "ITALIE",
    "NL": "PAYS-BAS",
    "IE": "IRLANDE",
    "PT": "PORTUGAL",
    "US": "ÉTATS-UNIS",
}


class EcbRateError(ValueError):
    """No ECB rate for a date the penalties need (the table starts after it)."""


# --- the ECB rate table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EcbRates:
    """The ECB main refinancing rate by effective date (percent), and the last date the table was checked for."""

    changes: tuple[tuple[date, Decimal], ...]
    verified_through: date | None = None
    source: str = ECB_RATES_RESOURCE

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError(f"{self.source}: no ECB rate")
        days = [d for d, _ in self.changes]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError(f"{self.source}: effective dates must be increasing and distinct")

    def in_force(self, day: date) -> Decimal:
        """The rate in force on ``day``: the last change effective on or before it."""
        first = self.changes[0][0]
        if day < first:
            raise EcbRateError(
                f"no ECB main refinancing rate known on {day.isoformat()}: {self.source} starts on "
                f"{first.isoformat()}; add the ECB's earlier decisions to it to compute penalties that far back"
            )
        return next(rate for effective, rate in reversed(self.changes) if effective <= day)

    def is_verified(self, day: date) -> bool:
        """Whether the table was checked up to ``day`` (a later ECB decision could change the rate after it)."""
        return self.verified_through is None or day <= self.verified_through


def load_ecb_rates(path: Path | str | None = None) -> EcbRates:
    """The rate table of ``path`` (YAML: ``verified_through`` and a ``rates`` list of ``effective_date`` /
    ``mro_rate``), by default the one shipped with relance."""
    if path is None:
        text = resources.files("relance.channels").joinpath(ECB_RATES_RESOURCE).read_text(encoding="utf-8")
        source = ECB_RATES_RESOURCE
    else:
        text, source = Path(path).read_text(encoding="utf-8"), str(path)
    data = yaml.safe_load(text) or {}
    try:
        changes = tuple(
            (_to_date(item["effective_date"]), Decimal(str(item["mro_rate"]))) for item in data.get("rates") or []
        )
        verified = data.get("verified_through")
        return EcbRates(changes, None if verified is None else _to_date(verified), source)
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"{source}: each rate needs an effective_date and an mro_rate ({exc!r})") from None


@cache
def default_ecb_rates() -> EcbRates:
    """The shipped table, read once."""
    return load_ecb_rates()


def _to_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- penalty arithmetic -------------------------------------------------------------------------------------


def half_year_start(day: date) -> date:
    """1 January or 1 July: the day whose ECB rate applies to ``day`` (L441-10)."""
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def _half_year_end(day: date) -> date:
    return date(day.year, 6, 30) if day.month <= 6 else date(day.year, 12, 31)


@dataclass(frozen=True)
class PenaltyPeriod:
    """Days of one half-year at one rate: ``start`` to ``end``, both included."""

    start: date
    end: date
    ecb_rate: Decimal
    annual_rate: Decimal  # ecb_rate + margin, percent
    interest: Decimal  # exact, not rounded
    rate_verified: bool = True

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class InvoicePenalty:
    """An invoice's penalties and indemnity as of the letter's date (nothing when it is not late yet)."""

    invoice_id: str
    due_date: date
    open_amount: Decimal
    periods: tuple[PenaltyPeriod, ...]
    penalty: Decimal  # rounded to the cent
    indemnity: Decimal  # euros

    @property
    def days_late(self) -> int:
        return sum(p.days for p in self.periods)

    @property
    def rate_verified(self) -> bool:
        return all(p.rate_verified for p in self.periods)


def penalty_periods(
    open_amount: Decimal, due_date: date, letter_date: date, *, ecb_rates: EcbRates, margin_points: Decimal
) -> tuple[PenaltyPeriod, ...]:
    """The half-year parts of the penalty period of one invoice, each with its rate and exact interest."""
    periods = []
    start = due_date + timedelta(days=1)
    while start <= letter_date:
        end = min(letter_date, _half_year_end(start))
        reference = half_year_start(start)
        ecb = ecb_rates.in_force(reference)
        annual = ecb + margin_points
        days = (end - start).days + 1
        interest = open_amount * annual / Decimal(100) * Decimal(days) / DAYS_PER_YEAR
        verified = ecb_rates.is_verified(reference)
        if not verified:
            _warn_unverified(reference, ecb, ecb_rates.source, ecb_rates.verified_through)
        periods.append(PenaltyPeriod(start, end, ecb, annual, interest, verified))
        start = end + timedelta(days=1)
    return tuple(periods)


@cache
def _warn_unverified(reference: date, ecb: Decimal, source: str, verified_through: date | None) -> None:
    """Said once per process and half-year, not once per letter."""
    log.warning(
        "the ECB rate in force on %s is taken as %s %% (the last change in %s, checked through %s): check it and "
        "add any later ECB decision to the table",
        reference,
        ecb,
        source,
        verified_through,
    )


def invoice_penalty(
    invoice_id: str,
    open_amount: Any,
    due_date: date,
    letter_date: date,
    *,
    ecb_rates: EcbRates,
    margin_points: Any,
    indemnity_eur: Any,
) -> InvoicePenalty:
    """L441-10 penalties (rounded once, half up, to the cent) and the D441-5 indemnity of one invoice."""
    amount = _decimal(open_amount).quantize(CENT, ROUND_HALF_UP)
    periods = penalty_periods(amount, due_date, letter_date, ecb_rates=ecb_rates, margin_points=_decimal(margin_points))
    penalty = sum((p.interest for p in periods), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
    indemnity = _decimal(indemnity_eur).quantize(CENT, ROUND_HALF_UP) if periods else Decimal("0.00")
    return InvoicePenalty(str(invoice_id), due_date, amount, periods, penalty, indemnity)


def _decimal(value: Any) -> Decimal:
    """A Decimal from a float the way it prints (``1200.5`` -> ``1200.5``, never its binary expansion)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class PenaltyStatement:
    """The penalties of the late invoices of one letter, in the invoices' currency (indemnities in euros)."""

    lines: tuple[InvoicePenalty, ...]
    currency: str
    letter_date: date

    @property
    def open_total(self) -> Decimal:
        return sum((line.open_amount for line in self.lines), Decimal("0.00"))

    @property
    def penalty_total(self) -> Decimal:
        return sum((line.penalty for line in self.lines), Decimal("0.00"))

    @property
    def indemnity_total(self) -> Decimal:
        return sum((line.indemnity for line in self.lines), Decimal("0.00"))

    @property
    def rate_verified(self) -> bool:
        return all(line.rate_verified for line in self.lines)


def penalty_statement(
    invoices: Sequence[StatementLine],
    currency: str,
    letter_date: date,
    *,
    ecb_rates: EcbRates,
    margin_points: Any,
    indemnity_eur: Any,
) -> PenaltyStatement:
    """The invoices late on ``letter_date`` with their penalties; an invoice without a due date is left out (and
    logged): its penalties cannot be computed."""
    lines = []
    for invoice in invoices:
        if invoice.due_date is None:
            log.warning("invoice %s has no due date: no late-payment penalties computed for it", invoice.invoice_id)
            continue
        if invoice.due_date >= letter_date:
            continue
        lines.append(
            invoice_penalty(
                invoice.invoice_id,
                invoice.open_amount,
                invoice.due_date,
                letter_date,
                ecb_rates=ecb_rates,
                margin_points=margin_points,
                indemnity_eur=indemnity_eur,
            )
        )
    return PenaltyStatement(tuple(lines), currency, letter_date)


# --- the PDF ------------------------------------------------------------------------------------------------

_FONT, _FONT_BOLD = "RelanceVera", "RelanceVera-Bold"


@cache
def _register_fonts() -> None:
    folder = Path(pdfmetrics.__file__).resolve().parent.parent / "fonts"
    pdfmetrics.registerFont(TTFont(_FONT, str(folder / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(_FONT_BOLD, str(folder / "VeraBd.ttf")))
    pdfmetrics.registerFontFamily(_FONT, normal=_FONT, bold=_FONT_BOLD, italic=_FONT, boldItalic=_FONT_BOLD)


@cache
def _styles() -> dict[str, ParagraphStyle]:
    _register_fonts()
    base = ParagraphStyle("body", fontName=_FONT, fontSize=10, leading=13.5, spaceAfter=6)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=10, textColor=colors.HexColor("#555555")),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5, spaceAfter=0),
        "num": ParagraphStyle("num", parent=base, fontSize=8.5, leading=10.5, spaceAfter=0, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", parent=base, fontName=_FONT_BOLD, fontSize=8.5, leading=10.5, spaceAfter=0),
        "headnum": ParagraphStyle(
            "headnum", parent=base, fontName=_FONT_BOLD, fontSize=8.5, leading=10.5, spaceAfter=0, alignment=TA_RIGHT
        ),
        "address": ParagraphStyle("address", parent=base, spaceAfter=0),
        "warning": ParagraphStyle("warning", parent=base, textColor=colors.HexColor("#b00000"), spaceAfter=0),
        "date": ParagraphStyle("date", parent=base, alignment=TA_RIGHT),
        "subject": ParagraphStyle("subject", parent=base, fontName=_FONT_BOLD),
        "section": ParagraphStyle("section", parent=base, fontName=_FONT_BOLD, spaceBefore=6),
    }


def _markup(text: Any) -> str:
    """Text for a ReportLab paragraph: markup characters escaped, line breaks kept; the narrow no-break space of
    French amounts (not in the font) becomes a no-break space."""
    return escape(str(text)).replace("\u202f", "\u00a0").replace("\n", "<br/>")


def _para(text: Any, style: str = "body") -> Paragraph:
    return Paragraph(_markup(text), _styles()[style])


def _value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    try:
        if value is None or pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    text = str(value).strip() if isinstance(value, str) else value
    return text if text != "" else None


def postal_address(row: Mapping[str, Any]) -> list[str] | None:
    """The address lines under the name (``None`` when the row has no street or no town): French style
    ``75011 PARIS``, British ``LEEDS`` then ``LS1 4AB``, the country in capitals when not France."""
    line1, line2 = _value(row, "address_line1"), _value(row, "address_line2")
    postal_code, city = _value(row, "postal_code"), _value(row, "city")
    country = str(_value(row, "country_code") or "FR").upper()
    if line1 is None or city is None:
        return None
    lines = [str(line1)] + ([str(line2)] if line2 is not None else [])
    if country == "GB":
        lines += [str(city).upper()] + ([str(postal_code).upper()] if postal_code is not None else [])
    else:
        lines.append(" ".join(str(v) for v in (postal_code, str(city).upper()) if v is not None))
    if country != "FR":
        lines.append(COUNTRY_NAMES_FR.get(country, country))
    return lines


def _percent(rate: Decimal, en: bool) -> str:
    text = f"{rate:.2f}"
    return f"{text}%" if en else f"{text.replace('.', ',')}\u00a0%"


def _points(margin: Decimal) -> str:
    text = format(margin.normalize(), "f")
    return text.replace(".", ",")


def _status(line: StatementLine, en: bool) -> str:
    """The statement's "overdue" cell, as the email's statement words it."""
    d = line.days_overdue
    if d is None:
        return ""
    if d > 0:
        return f"{d} day{'s' if d > 1 else ''}" if en else f"{d} jour{'s' if d > 1 else ''}"
    if d == 0:
        return "due today" if en else "échue ce jour"
    return "not yet due" if en else "non échue"


_GRID = [
    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
    ("LINEBELOW", (0, 1), (-1, -2), 0.25, colors.HexColor("#cccccc")),
    ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
]


def _statement_table(statement: Statement) -> Table:
    """The statement of account of a grouped reminder: the email's columns, one row per invoice and the total."""
    en = statement.language == "en"
    heads = (
        ("Invoice", "Date", "Due", "Overdue", "Amount", "Outstanding")
        if en
        else ("Facture", "Date", "Échéance", "Retard", "Montant", "Restant dû")
    )
    money = lambda v: format_amount(v, statement.currency, statement.language)  # noqa: E731
    rows: list[list[Any]] = [[_para(h, "headnum" if i >= 4 else "head") for i, h in enumerate(heads)]]
    for line in statement.lines:
        rows.append(
            [
                _para(line.invoice_id, "cell"),
                _para(format_date(line.issue_date, statement.language) or "", "cell"),
                _para(format_date(line.due_date, statement.language) or "", "cell"),
                _para(_status(line, en), "cell"),
                _para("" if line.amount is None else money(line.amount), "num"),
                _para(money(line.open_amount), "num"),
            ]
        )
    total = "Total outstanding" if en else "Total restant dû"
    rows.append([_para(total, "head"), "", "", "", "", _para(money(statement.total), "num")])
    table = Table(rows, colWidths=[32 * mm, 22 * mm, 22 * mm, 24 * mm, 30 * mm, 30 * mm], repeatRows=1)
    table.setStyle(TableStyle([*_GRID, ("SPAN", (0, -1), (4, -1))]))
    return table


def _penalty_block(penalties: PenaltyStatement, language: str, margin_points: Decimal) -> list[Any]:
    """The L441-10 / D441-5 computation: heading, one row per late invoice, totals, how it was computed."""
    en = language == "en"
    currency = penalties.currency
    money = lambda v: format_amount(v, currency, language)  # noqa: E731
    euros = lambda v: format_amount(v, "EUR", language)  # noqa: E731
    as_of = format_date(penalties.letter_date, language)
    unverified = "" if penalties.rate_verified else " *"
    heading = (
        f"Late-payment penalties (art. L441-10 of the French Commercial Code) and fixed recovery indemnity "
        f"(art. D441-5), calculated to {as_of}"
        if en
        else f"Décompte des pénalités de retard (art. L441-10 du Code de commerce) et de l'indemnité forfaitaire "
        f"pour frais de recouvrement (art. D441-5), arrêté au {as_of}"
    )
    heads = (
        ("Invoice", "Due date", "Days late", "Outstanding", "Annual rate", "Penalties", "Indemnity")
        if en
        else ("Facture", "Échéance", "Jours de retard", "Restant dû", "Taux annuel", "Pénalités", "Indemnité")
    )
    day_unit = " d" if en else "\u00a0j"
    rows: list[list[Any]] = [[_para(h, "headnum" if i >= 2 else "head") for i, h in enumerate(heads)]]
    for line in penalties.lines:
        rates = "\n".join(
            f"{_percent(p.annual_rate, en)} × {p.days}{day_unit}{'' if p.rate_verified else ' *'}" for p in line.periods
        )
        rows.append(
            [
                _para(line.invoice_id, "cell"),
                _para(format_date(line.due_date, language), "cell"),
                _para(str(line.days_late), "num"),
                _para(money(line.open_amount), "num"),
                _para(rates, "num"),
                _para(money(line.penalty), "num"),
                _para(euros(line.indemnity), "num"),
            ]
        )
    rows.append(
        [
            _para("Total", "head"),
            "",
            "",
            _para(money(penalties.open_total), "num"),
            "",
            _para(money(penalties.penalty_total), "num"),
            _para(euros(penalties.indemnity_total), "num"),
        ]
    )
    table = Table(rows, colWidths=[27 * mm, 23 * mm, 17 * mm, 27 * mm, 28 * mm, 22 * mm, 21 * mm], repeatRows=1)
    table.setStyle(TableStyle([*_GRID, ("SPAN", (0, -1), (2, -1))]))

    margin = _points(margin_points)
    if currency.upper() == "EUR":
        claimed = penalties.open_total + penalties.penalty_total + penalties.indemnity_total
        total = (
            f"Total claimed: {money(penalties.open_total)} outstanding + {money(penalties.penalty_total)} penalties "
            f"+ {euros(penalties.indemnity_total)} indemnities = {money(claimed)}."
            if en
            else f"Total réclamé : {money(penalties.open_total)} de principal + {money(penalties.penalty_total)} de "
            f"pénalités + {euros(penalties.indemnity_total)} d'indemnités = {money(claimed)}."
        )
    else:
        subtotal = money(penalties.open_total + penalties.penalty_total)
        total = (
            f"Total claimed: {subtotal} (outstanding and penalties), plus {euros(penalties.indemnity_total)} of "
            "indemnities."
            if en
            else f"Total réclamé : {subtotal} (principal et pénalités), plus {euros(penalties.indemnity_total)} "
            "d'indemnités."
        )
    how = (
        f"Penalties are computed for each invoice as simple interest on the amount outstanding, from the day after "
        f"its due date up to and including {as_of}, exact days over 365, at an annual rate equal to the European "
        f"Central Bank's main refinancing rate in force on 1 January (first half-year) or 1 July (second half-year) "
        f"plus {margin} percentage points. The fixed indemnity is due for each invoice paid late."
        if en
        else f"Pénalités calculées pour chaque facture en intérêts simples sur le montant restant dû, du lendemain de "
        f"son échéance au {as_of} inclus, en jours exacts sur une base de 365 jours, au taux annuel égal au taux de "
        f"la Banque centrale européenne pour ses opérations principales de refinancement en vigueur au 1er janvier "
        f"(premier semestre) ou au 1er juillet (second semestre), majoré de {margin} points. L'indemnité forfaitaire "
        "est due pour chaque facture payée en retard."
    )
    block: list[Any] = [
        _para(heading + unverified, "section"),
        table,
        Spacer(1, 2 * mm),
        _para(total),
        _para(how, "small"),
    ]
    if unverified:
        block.append(
            _para(
                "* ECB rate to be checked: later than the last decision in relance's rate table."
                if en
                else "* Taux BCE à vérifier : postérieur à la dernière décision de la table des taux de relance.",
                "warning",
            )
        )
    return block


def render_letter_pdf(
    row: Mapping[str, Any],
    *,
    sender_name: str,
    sender_address: str = "",
    as_of_date: date | None = None,
    ecb_rates: EcbRates | None = None,
    margin_points: Any = 10,
    indemnity_eur: Any = 40,
) -> bytes:
    """One planned reminder as a printable A4 letter (PDF bytes); see the module docstring for what it holds.

    ``row``: a plan row (the columns :func:`~relance.channels.email.render_reminder` reads, plus ``reminder_key``,
    ``customer_id`` and the postal address columns). ``sender_address``: the creditor's postal address, one line
    per line. ``as_of_date``: the letter's date (default the row's ``as_of_date``), the day the penalties are
    computed to. ``ecb_rates``: default the shipped table. Raises :class:`EcbRateError` when a formal notice to a
    business needs a rate older than the table.
    """
    letter_date = as_of_date or _as_date(_value(row, "as_of_date"))
    if letter_date is None:
        raise ValueError(f"letter {row.get('reminder_key')}: no date (as_of_date)")
    message = render_reminder(row, sender_name=sender_name)
    language = message.language
    en = language == "en"
    tone = str(row["tone"])
    b2b = str(_value(row, "customer_type") or "").upper() == "B2B"
    currency = str(row["currency"])
    margin = _decimal(margin_points)

    penalties: PenaltyStatement | None = None
    if tone == "formal_notice" and b2b:
        # the statement's invoices (one or several), else the row's one invoice
        invoices: Sequence[StatementLine] = parse_statement(row.get("statement")) or [
            StatementLine(str(row["invoice_id"]), float(row["open_amount"]), due_date=_as_date(_value(row, "due_date")))
        ]
        penalties = penalty_statement(
            invoices,
            currency,
            letter_date,
            ecb_rates=ecb_rates or default_ecb_rates(),
            margin_points=margin,
            indemnity_eur=indemnity_eur,
        )

    styles = _styles()
    story: list[Any] = []
    # one line per line of the address: newlines, or ' | ' as a setting in .env writes them
    address_lines = [x.strip() for x in str(sender_address or "").replace("|", "\n").splitlines() if x.strip()]
    sender = [f"<b>{_markup(sender_name)}</b>", *(_markup(x) for x in address_lines)]
    story.append(Paragraph("<br/>".join(sender), styles["address"]))
    story.append(Spacer(1, 12 * mm))

    customer_id = _value(row, "customer_id")
    addressee = _value(row, "customer_name") or _value(row, "recipient")
    address = postal_address(row)
    recipient: list[Any] = [Paragraph(f"<b>{_markup(addressee or '')}</b>", styles["address"])]
    if address is not None:
        recipient += [_para(line, "address") for line in address]
    else:
        missing = f"ADRESSE POSTALE MANQUANTE : compléter depuis la fiche client {customer_id or '?'}"
        if en:
            missing += " (postal address missing)"
        recipient.append(_para(missing, "warning"))
        log.warning("letter %s: customer %s has no postal address", row.get("reminder_key"), customer_id)
    block = Table([["", recipient]], colWidths=[95 * mm, 75 * mm])
    block.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [block, Spacer(1, 12 * mm)]

    dated = format_date(letter_date, language)
    story.append(_para(dated if en else f"Le {dated}", "date"))
    if tone == "formal_notice":
        registered = "By registered post with acknowledgement of receipt"
        story.append(_para(registered if en else "Lettre recommandée avec avis de réception", "subject"))
    story.append(_para(f"{'Subject:' if en else 'Objet :'} {message.subject}", "subject"))
    reference = f"{'Customer' if en else 'Client'} {customer_id or ''} · {'ref.' if en else 'réf.'} "
    story.append(_para(reference + str(row.get("reminder_key") or "")[:12], "small"))
    story.append(Spacer(1, 4 * mm))

    # the computation goes right after the paragraph on the indemnity (D441-5), else before the closing
    blocks = message.blocks
    after = next((i for i, b in enumerate(blocks) if isinstance(b, str) and "D441-5" in b), len(blocks) - 2)
    for i, item in enumerate(blocks):
        if isinstance(item, Statement):
            story += [_statement_table(item), Spacer(1, 4 * mm)]
        elif isinstance(item, str):
            story.append(_para(item))
        else:  # another block of the message (a payment link): its text
            story.append(_para(item.text()))
        if i == after and penalties is not None and penalties.lines:
            story.append(KeepTogether(_penalty_block(penalties, language, margin)))
            story.append(Spacer(1, 2 * mm))

    footer = f"{sender_name} · {'ref.' if en else 'réf.'} {str(row.get('reminder_key') or '')[:12]}"

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(_FONT, 7.5)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(20 * mm, 10 * mm, footer.replace("\u202f", "\u00a0"))
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, f"{doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=message.subject,
        author=sender_name,
        creator="relance",
        invariant=1,
    )
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a pandas Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None
