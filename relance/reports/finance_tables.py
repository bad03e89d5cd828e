"""Pure builders: a :class:`~relance.reports.finance_pack.FinancePack` and a language in, the report's sections out.

A :class:`FinanceDocument` is what every output renders: the HTML (:mod:`relance.reports.finance_html`), the
workbook (:mod:`relance.reports.finance_xlsx`) and the Prefect markdown (:func:`markdown`). Its tables hold raw
values (numbers stay numbers, dates stay dates) with a :class:`Column` spec that says how each is shown, so the
HTML formats ``1 234,56 €`` while the workbook keeps ``1234.56`` with a currency number format.

Rules the builders keep:

* amounts are never added across currencies: every table has a currency column, and every total is per currency;
* the grouping by segment and sector adds up the per-customer rows of ``serving.report_aged_balance_by_customer``
  (the only arithmetic here, a sum by group: each group's total is part of its currency's open receivables);
* labels come from :mod:`relance.reports.i18n`; codes (channels, tones, sectors) are shown in words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pandas as pd

from relance.reminders.experiment import holdout_effect
from relance.reports import i18n
from relance.reports.finance_pack import FinancePack

Kind = Literal["weekly", "flash"]
KINDS: tuple[Kind, ...] = ("weekly", "flash")
ColumnKind = Literal["text", "money", "int", "number", "days", "ratio", "percent", "points", "date", "rate"]

BUCKET_COLUMNS: tuple[str, ...] = ("not_due", "d1_30", "d31_60", "d61_90", "d90_plus")


@dataclass(frozen=True)
class Column:
    """How one column of a :class:`Table` is labelled and shown. ``money`` reads the row's ``currency``."""

    key: str
    label: str
    kind: ColumnKind = "text"
    decimals: int = 1


@dataclass(frozen=True)
class Table:
    """One table: raw values in ``frame`` (a ``_total`` column marks total rows), how to show them, its sheet.

    ``html_limit``: the HTML shows the first N rows of each currency (the workbook has them all)."""

    name: str
    sheet: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    title: str | None = None
    html_limit: int | None = None
    html_columns: tuple[str, ...] | None = None
    xlsx_exclude: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.frame.empty

    def columns_for_xlsx(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.key not in self.xlsx_exclude)

    def columns_for_html(self) -> tuple[Column, ...]:
        if self.html_columns is None:
            return self.columns
        return tuple(c for c in self.columns if c.key in self.html_columns)

    def rows_for_html(self) -> pd.DataFrame:
        if self.html_limit is None or "currency" not in self.frame.columns or self.frame.empty:
            return self.frame
        return self.frame.groupby("currency", sort=False, group_keys=False).head(self.html_limit)


@dataclass(frozen=True)
class Section:
    """A part of the report: a title, notes, charts (ids in :attr:`FinanceDocument.charts`) and tables, or why
    there is nothing (``unavailable``: the relation is missing). A table without rows stays (the workbook keeps
    the same sheets every week) but the HTML leaves it out, and shows ``empty_text`` when no table has rows."""

    id: str
    title: str
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()
    charts: tuple[str, ...] = ()
    unavailable: str | None = None
    empty_text: str | None = None


@dataclass(frozen=True)
class KeyFigure:
    """One line of the key figures: a value per currency, raw and as text."""

    key: str
    label: str
    kind: ColumnKind
    values: dict[str, Any]
    texts: dict[str, str]
    decimals: int = 1


@dataclass(frozen=True)
class Chart:
    """What a chart draws (the data, already per currency), rendered by :mod:`relance.reports.finance_charts`."""

    id: str
    kind: Literal["aged", "dso", "forecast"]
    title: str
    alt: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FinanceDocument:
    kind: Kind
    language: str
    as_of_date: date
    title: str
    subject: str
    intro: str
    meta: str
    banners: tuple[str, ...]
    currencies: tuple[str, ...]
    key_figures: tuple[KeyFigure, ...]
    sections: tuple[Section, ...]
    charts: dict[str, Chart] = field(default_factory=dict)
    summary_rows: tuple[dict[str, Any], ...] = ()
    #: longer notes for the workbook's Notes sheet (the forecast's method and coverage, as its module wrote them)
    workbook_notes: tuple[str, ...] = ()

    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]


# --- formatting one value ------------------------------------------------------------------------------------------


def format_value(value: Any, kind: ColumnKind, language: str, currency: Any = None, decimals: int = 1) -> str:
    """A raw value as the reader sees it in ``language`` (blank for a missing text or date)."""
    if kind == "text":
        return "" if i18n.is_missing(value) else str(value)
    if kind == "date":
        return i18n.day(value, language)
    if i18n.is_missing(value):
        return i18n.t(language, "missing")
    if kind == "money":
        return i18n.money(value, currency, language)
    if kind == "int":
        return i18n.number(value, language, 0)
    if kind == "number":
        return i18n.number(value, language, decimals)
    if kind == "days":
        return i18n.number(value, language, decimals)
    if kind == "ratio":
        return i18n.percent(value, language, decimals)
    if kind == "percent":
        return i18n.percent(value, language, decimals, ratio=False)
    if kind == "rate":
        return i18n.percent(value, language, 2)
    if kind == "points":
        return i18n.points(value, language)
    raise ValueError(f"unknown column kind {kind!r}")


def _num(value: Any) -> float:
    if i18n.is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for c in columns:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


# --- sections ------------------------------------------------------------------------------------------------------


def _cols(language: str, *specs: tuple) -> tuple[Column, ...]:
    """Columns from (key, catalogue label[, kind[, decimals]]); a label of None with a fifth item, a baseline
    name, reads "Baseline: <its name>"."""
    out = []
    for key, label, *rest in specs:
        if label is None:
            kind, decimals, baseline = rest
            text = i18n.t(language, "col_baseline", name=_baseline_name(language, baseline))
            out.append(Column(key, text, kind, decimals))
        else:
            out.append(Column(key, i18n.t(language, label), *rest))
    return tuple(out)


def _bucket_specs() -> tuple[tuple, ...]:
    return tuple((b, f"col_{b}", "money") for b in BUCKET_COLUMNS)


def aged_by_currency(pack: FinancePack) -> pd.DataFrame:
    """Currency x bucket totals: the per-customer relation summed per currency, or (on a warehouse without it)
    ``serving.report_aged_balance`` pivoted. Columns: currency, the buckets, total_open, overdue_amount,
    invoice_count, customer_count."""
    columns = ["currency", *BUCKET_COLUMNS, "total_open", "overdue_amount", "invoice_count", "customer_count"]
    if pack.aged_by_customer is not None:
        frame = _numeric(pack.aged_by_customer, [*BUCKET_COLUMNS, "total_open", "overdue_amount", "invoice_count"])
        if frame.empty:
            return pd.DataFrame(columns=columns)
        out = frame.groupby("currency", sort=True).agg(
            **{c: (c, "sum") for c in (*BUCKET_COLUMNS, "total_open", "overdue_amount", "invoice_count")},
            customer_count=("customer_id", "nunique"),
        )
        return out.reset_index()[columns]
    if pack.aged_balance is not None and not pack.aged_balance.empty:
        keys = {"not_due": "not_due", "1-30": "d1_30", "31-60": "d31_60", "61-90": "d61_90", "90+": "d90_plus"}
        frame = _numeric(pack.aged_balance, ["open_amount", "invoice_count"])
        wide = frame.pivot_table(index="currency", columns="aging_bucket", values="open_amount", aggfunc="sum")
        wide = wide.rename(columns=keys).reindex(columns=list(BUCKET_COLUMNS)).fillna(0.0)
        wide["total_open"] = wide[list(BUCKET_COLUMNS)].sum(axis=1)
        wide["overdue_amount"] = wide["total_open"] - wide["not_due"]
        wide["invoice_count"] = frame.groupby("currency")["invoice_count"].sum()
        wide["customer_count"] = math.nan
        return wide.reset_index()[columns]
    return pd.DataFrame(columns=columns)


def _group_aged(frame: pd.DataFrame, label: Callable[[dict], str], language: str) -> pd.DataFrame:
    """Per-customer rows summed by (currency, label), largest first within a currency, then a total row per
    currency (``_total``) equal to the currency's open receivables."""
    if frame.empty:
        return pd.DataFrame(
            columns=["currency", "group", *BUCKET_COLUMNS, "total_open", "overdue_amount", "customer_count", "_total"]
        )
    numeric = _numeric(frame, [*BUCKET_COLUMNS, "total_open", "overdue_amount", "invoice_count"])
    numeric["group"] = [label(r) for r in numeric.to_dict("records")]
    sums = (*BUCKET_COLUMNS, "total_open", "overdue_amount", "invoice_count")
    out = []
    for currency, part in numeric.groupby("currency", sort=True):
        grouped = part.groupby("group", sort=False).agg(
            **{c: (c, "sum") for c in sums}, customer_count=("customer_id", "nunique")
        )
        grouped = grouped.sort_values(["total_open"], ascending=False, kind="mergesort").reset_index()
        grouped.insert(0, "currency", currency)
        grouped["_total"] = False
        total = {c: part[c].sum() for c in sums} | {
            "currency": currency,
            "group": i18n.t(language, "total_row"),
            "customer_count": part["customer_id"].nunique(),
            "_total": True,
        }
        out += [grouped, pd.DataFrame([total])]
    return pd.concat(out, ignore_index=True)


def aged_sections(pack: FinancePack, language: str) -> list[Section]:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    by_currency = aged_by_currency(pack)
    money_cols = (*_bucket_specs(), ("total_open", "col_total", "money"), ("overdue_amount", "col_overdue", "money"))
    currency_table = Table(
        "aged_balance",
        t("sheet_aged"),
        _cols(
            language,
            ("currency", "col_currency"),
            *money_cols,
            ("invoice_count", "col_invoices", "int"),
            ("customer_count", "col_customers", "int"),
        ),
        by_currency,
    )
    if pack.aged_by_customer is None and pack.aged_balance is None:
        return [Section("aged", t("sec_aged"), unavailable=t("not_available", relation=pack.missing["aged_balance"]))]
    sections = [
        Section(
            "aged",
            t("sec_aged"),
            tables=(currency_table,),
            charts=("aged",) if not by_currency.empty else (),
            empty_text=t("no_rows") if by_currency.empty else None,
        )
    ]
    if pack.aged_by_customer is None:
        sections.append(
            Section(
                "aged-detail",
                t("sec_aged_detail"),
                unavailable=t("not_available", relation=pack.missing["aged_by_customer"]),
            )
        )
        return sections
    frame = pack.aged_by_customer
    customers = _numeric(frame, [*BUCKET_COLUMNS, "total_open", "overdue_amount", "invoice_count"])
    customers = customers.sort_values(
        ["currency", "total_open", "customer_id"], ascending=[True, False, True], kind="mergesort"
    ).reset_index(drop=True)
    customers["segment"] = [
        i18n.segment_label(language, r["customer_type"], r["size_band"]) for r in customers.to_dict("records")
    ]
    customers["sector"] = [i18n.sector_label(language, s) for s in customers["sector_section"]]
    customers["_total"] = False
    customer_table = Table(
        "aged_by_customer",
        t("sheet_customer"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("customer_id", "col_customer_id"),
            ("customer_name", "col_customer"),
            ("segment", "col_segment"),
            ("sector", "col_sector"),
            *money_cols,
            ("invoice_count", "col_invoices", "int"),
        ),
        customers,
        title=t("sec_aged_customer", n=pack.top_n),
        html_limit=pack.top_n,
        html_columns=("currency", "customer_name", "segment", *BUCKET_COLUMNS, "total_open"),
    )
    group_cols = (*money_cols, ("customer_count", "col_customers", "int"), ("invoice_count", "col_invoices", "int"))
    group_html = ("currency", "group", *BUCKET_COLUMNS, "total_open", "overdue_amount", "customer_count")
    segment = _group_aged(frame, lambda r: i18n.segment_label(language, r["customer_type"], r["size_band"]), language)
    sector = _group_aged(frame, lambda r: i18n.sector_label(language, r["sector_section"]), language)
    sections.append(
        Section(
            "aged-detail",
            t("sec_aged_detail"),
            tables=(
                customer_table,
                Table(
                    "aged_by_segment",
                    t("sheet_segment"),
                    _cols(language, ("currency", "col_currency"), ("group", "col_segment"), *group_cols),
                    segment,
                    title=t("sec_aged_segment"),
                    html_columns=group_html,
                ),
                Table(
                    "aged_by_sector",
                    t("sheet_sector"),
                    _cols(language, ("currency", "col_currency"), ("group", "col_sector"), *group_cols),
                    sector,
                    title=t("sec_aged_sector"),
                    html_columns=group_html,
                ),
            ),
        )
    )
    return sections


def _dso_points(pack: FinancePack) -> dict[str, dict[str, float]]:
    """Per currency: countback DSO at the latest week end up to the as-of date and at the latest one at least 7
    days before it, and the simple DSO (``serving.report_dso`` of the day, else the trend's)."""
    out: dict[str, dict[str, float]] = {}
    trend = pack.dso_trend
    if trend is not None and not trend.empty:
        frame = _numeric(trend, ["dso_countback_days", "dso_simple_days", "receivables"])
        frame["week_end_date"] = pd.to_datetime(frame["week_end_date"]).dt.date
        for currency, part in frame.groupby("currency"):
            now = part[part["week_end_date"] <= pack.as_of_date].sort_values("week_end_date")
            before = now[now["week_end_date"] <= pack.as_of_date - timedelta(days=7)]
            out[str(currency)] = {
                "dso_countback": _num(now["dso_countback_days"].iloc[-1]) if not now.empty else math.nan,
                "dso_countback_last_week": (
                    _num(before["dso_countback_days"].iloc[-1]) if not before.empty else math.nan
                ),
                "dso_simple": _num(now["dso_simple_days"].iloc[-1]) if not now.empty else math.nan,
            }
    if pack.dso is not None:
        for r in pack.dso.to_dict("records"):
            out.setdefault(str(r["currency"]), {})["dso_simple"] = _num(r["dso_days"])
    return out


def dso_section(pack: FinancePack, language: str) -> Section:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    if pack.dso_trend is None:
        return Section("dso", t("sec_dso"), unavailable=t("not_available", relation=pack.missing["dso_trend"]))
    frame = _numeric(pack.dso_trend, ["receivables", "dso_countback_days", "dso_simple_days"])
    frame["week_end_date"] = pd.to_datetime(frame["week_end_date"]).dt.date
    table = Table(
        "dso_trend",
        t("sheet_dso"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("week_end_date", "col_week_end", "date"),
            ("receivables", "col_receivables", "money"),
            ("dso_countback_days", "col_dso_countback", "days"),
            ("dso_simple_days", "col_dso_simple", "days"),
        ),
        frame.sort_values(["currency", "week_end_date"], ascending=[True, False], kind="mergesort").reset_index(
            drop=True
        ),
        html_limit=5,  # the latest week ends; the chart shows the trend, the workbook every row
    )
    return Section(
        "dso",
        t("sec_dso"),
        tables=(table,),
        notes=(t("dso_note"),),
        charts=("dso",) if not frame.empty else (),
        empty_text=t("no_rows") if frame.empty else None,
    )


def _cei_total_mask(frame: pd.DataFrame) -> pd.Series:
    """The 13-week row(s) of ``serving.report_cei`` (its ``period`` names the whole window, the others a week)."""
    period = frame["period"].astype(str).str.lower()
    return period.str.contains("13") | period.str.contains("total") | period.str.startswith("last")


def cei_section(pack: FinancePack, language: str) -> Section:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    if pack.cei is None:
        return Section("cei", t("sec_cei"), unavailable=t("not_available", relation=pack.missing["cei"]))
    money = ["beginning_receivables", "sales", "ending_receivables", "ending_current_receivables"]
    frame = _numeric(pack.cei, [*money, "cei_pct"])
    for c in ("period_start", "period_end"):
        frame[c] = pd.to_datetime(frame[c]).dt.date
    frame["_total"] = _cei_total_mask(frame)
    frame["period_label"] = [
        t("cei_total")
        if r["_total"]
        else f"{i18n.day(r['period_start'], language)} – {i18n.day(r['period_end'], language)}"
        for r in frame.to_dict("records")
    ]
    frame = frame.sort_values(["currency", "_total", "period_start"], ascending=[True, False, False], kind="mergesort")
    table = Table(
        "cei",
        t("sheet_cei"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("period_label", "col_period"),
            ("period_start", "col_period_start", "date"),
            ("period_end", "col_period_end", "date"),
            ("beginning_receivables", "col_beginning", "money"),
            ("sales", "col_sales", "money"),
            ("ending_receivables", "col_ending", "money"),
            ("ending_current_receivables", "col_ending_current", "money"),
            ("cei_pct", "col_cei", "percent"),
        ),
        frame.reset_index(drop=True),
        html_limit=5,  # the 13 weeks as one, then the latest 4 weeks
    )
    return Section(
        "cei", t("sec_cei"), tables=(table,), notes=(t("cei_note"),), empty_text=t("no_rows") if frame.empty else None
    )


def _baseline_name(language: str, name: str) -> str:
    key = f"baseline_{name}"
    return i18n.t(language, key) if key in i18n.CATALOGUE[language] else name.replace("_", " ")


def wape_lines(pack: FinancePack, language: str, currencies: Sequence[str]) -> list[str]:
    """One sentence per currency: the forecast's WAPE over the past weeks, with every baseline's beside it."""
    lines = []
    weeks = 0 if pack.forecast_backtest is None else int(pack.forecast_backtest["week_start"].nunique())
    for currency in currencies:
        wape = pack.wape.get(currency, math.nan)
        if math.isnan(_num(wape)):
            lines.append(i18n.t(language, "wape_none", currency=currency))
            continue
        baselines = ", ".join(
            f"{_baseline_name(language, name)} {i18n.percent(scores.get(currency), language)}"
            for name, scores in sorted(pack.baselines.items())
        )
        lines.append(
            i18n.t(
                language,
                "wape_line",
                currency=currency,
                weeks=weeks,
                wape=i18n.percent(wape, language),
                baselines=baselines or i18n.t(language, "missing"),
            )
        )
    return lines


def forecast_sections(pack: FinancePack, language: str) -> list[Section]:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    title = t("sec_forecast", weeks=pack.forecast_weeks_count)
    if pack.forecast_weeks is None:
        why = t("forecast_unavailable")
        return [Section("forecast", title, unavailable=why)]
    weeks = _numeric(pack.forecast_weeks, ["expected", "p10", "p50", "p90", "invoice_count"])
    for c in ("week_start", "week_end"):
        weeks[c] = pd.to_datetime(weeks[c]).dt.date
    weeks = weeks.sort_values(["currency", "week_start"], kind="mergesort").reset_index(drop=True)
    forecast_table = Table(
        "forecast",
        t("sheet_forecast"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("week_start", "col_week_start", "date"),
            ("week_end", "col_period_end", "date"),
            ("expected", "col_expected", "money"),
            ("p10", "col_p10", "money"),
            ("p50", "col_p50", "money"),
            ("p90", "col_p90", "money"),
            ("invoice_count", "col_invoices", "int"),
        ),
        weeks,
    )
    backtest = (
        pack.forecast_backtest if pack.forecast_backtest is not None else pd.DataFrame(columns=["currency"])
    ).copy()
    if not backtest.empty:
        baseline_columns = [c for c in backtest.columns if str(c).startswith("forecast_")]
        backtest = _numeric(backtest, ["forecast", "actual", "abs_error", *baseline_columns])
        for c in ("week_start", "week_end"):
            backtest[c] = pd.to_datetime(backtest[c]).dt.date
        backtest = backtest.sort_values(["currency", "week_start"], ascending=[True, False], kind="mergesort")
        backtest = backtest.reset_index(drop=True)
    backtest_table = Table(
        "backtest",
        t("sheet_backtest"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("week_start", "col_week_start", "date"),
            ("week_end", "col_period_end", "date"),
            ("forecast", "col_forecast", "money"),
            ("actual", "col_actual", "money"),
            ("abs_error", "col_abs_error", "money"),
            *(
                (f"forecast_{name}", None, "money", 1, name)
                for name in sorted(pack.baselines)
                if f"forecast_{name}" in backtest.columns
            ),
        ),
        backtest,
        html_limit=6,  # the latest weeks; the chart shows them all, the workbook every row
    )
    currencies = sorted(set(weeks["currency"].astype(str)) | set(backtest.get("currency", pd.Series()).astype(str)))
    return [
        Section(
            "forecast",
            title,
            tables=(forecast_table,),
            # the forecast's own notes (method, coverage, in the model layer's English) go to the workbook
            notes=(t("forecast_note"), *((t("forecast_notes_pointer"),) if pack.forecast_notes else ())),
            charts=("forecast",) if not weeks.empty else (),
            empty_text=t("no_rows") if weeks.empty else None,
        ),
        Section(
            "backtest",
            t("sec_backtest"),
            tables=(backtest_table,),
            notes=tuple(wape_lines(pack, language, currencies)),
            empty_text=t("no_rows") if backtest.empty else None,
        ),
    ]


def at_risk_section(pack: FinancePack, language: str) -> Section:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    if pack.at_risk is None:
        return Section("at-risk", t("sec_at_risk"), unavailable=t("not_available", relation=pack.missing["at_risk"]))
    frame = _numeric(pack.at_risk, ["open_amount", "days_overdue", "p_late", "expected_at_risk", "risk_rank"])
    frame["predicted_payment_date"] = pd.to_datetime(frame["predicted_payment_date"]).dt.date
    frame = frame.sort_values(["currency", "risk_rank", "invoice_id"], kind="mergesort").reset_index(drop=True)
    procedure = frame["has_open_procedure"] if "has_open_procedure" in frame.columns else pd.Series(False, frame.index)
    frame["customer"] = [
        f"{name} ({t('in_procedure')})" if bool(p) and not i18n.is_missing(p) else str(name)
        for name, p in zip(frame["customer_name"], procedure, strict=True)
    ]
    specs: list[tuple] = [
        ("currency", "col_currency"),
        ("risk_rank", "col_rank", "int"),
        ("invoice_id", "col_invoice"),
        ("customer", "col_customer"),
        ("risk_grade", "col_grade"),
        ("open_amount", "col_open_amount", "money"),
        ("days_overdue", "col_days_overdue", "int"),
        ("p_late", "col_p_late", "number", 2),
        ("predicted_payment_date", "col_payment_date", "date"),
        ("expected_at_risk", "col_exposure", "money"),
        ("reason_1", "col_reason"),
    ]
    # the customer's latest risk event, when serving.report_at_risk_exposure carries it
    event_type = next((c for c in ("latest_risk_event_type", "latest_event_type") if c in frame), None)
    event_date = next((c for c in ("latest_risk_event_date", "latest_event_date") if c in frame), None)
    if event_type:
        frame["risk_event"] = [i18n.code_label(language, v) for v in frame[event_type]]
        specs.append(("risk_event", "col_risk_event"))
    if event_date:
        frame["risk_event_date"] = pd.to_datetime(frame[event_date]).dt.date
        specs.append(("risk_event_date", "col_risk_event_date", "date"))
    if event_type:  # the email has one narrow column for both: "director change (01/05/2026)"
        frame["risk_event_text"] = [
            f"{label} ({i18n.day(when, language)})" if label and when else label
            for label, when in zip(frame["risk_event"], frame.get("risk_event_date", [None] * len(frame)), strict=True)
        ]
        specs.append(("risk_event_text", "col_risk_event"))
    table = Table(
        "at_risk",
        t("sheet_at_risk"),
        _cols(language, *specs),
        frame,
        html_limit=min(pack.top_n, 10),
        html_columns=tuple(
            # the amounts carry their currency's symbol: the column itself is left to the workbook
            s[0]
            for s in specs
            if s[0] not in ("currency", "invoice_id", "risk_event", "risk_event_date")
        ),
        xlsx_exclude=("risk_event_text",),
    )
    return Section("at-risk", t("sec_at_risk"), tables=(table,), empty_text=t("no_rows") if frame.empty else None)


def alerts_table(pack: FinancePack, language: str, *, only_day: bool) -> Table:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    alerts = pack.alerts if pack.alerts is not None else pd.DataFrame()
    if not alerts.empty:
        alerts = alerts.copy()
        alerts["as_of_date"] = pd.to_datetime(alerts["as_of_date"]).dt.date
        if only_day:
            alerts = alerts[alerts["as_of_date"] == pack.as_of_date]
        alerts["type"] = [i18n.code_label(language, v) for v in alerts["alert_type"]]
        alerts = alerts.sort_values(["as_of_date", "alert_type", "alert_key"], ascending=[False, True, True])
    else:
        alerts = pd.DataFrame(columns=["as_of_date", "type", "title", "detail"])
    return Table(
        "alerts",
        t("sheet_alerts"),
        _cols(
            language,
            ("as_of_date", "col_date", "date"),
            ("type", "col_type"),
            ("title", "col_alert"),
            ("detail", "col_detail"),
        ),
        alerts.reset_index(drop=True),
    )


def alerts_section(pack: FinancePack, language: str, *, only_day: bool = False) -> Section:
    table = alerts_table(pack, language, only_day=only_day)
    title = i18n.t(language, "sec_new_alerts" if only_day else "sec_alerts")
    return Section("alerts", title, tables=(table,), empty_text=i18n.t(language, "no_alerts"))


HOLDOUT_COLUMNS = ("group", "n_treated", "rate_treated", "n_holdout", "rate_holdout", "effect", "ci_low", "ci_high")


def holdout_table(pack: FinancePack, language: str) -> Table:
    """The randomised holdout's effect, overall and by first channel (``relance.reminders.experiment``), then
    the intention-to-treat effect of each scenario; no rows while no holdout outcome is in."""
    outcomes = pack.experiment_outcomes
    rows: list[dict[str, Any]] = []
    if outcomes is not None and not outcomes.empty:
        frame = outcomes.rename(columns={"first_channel": "channel"})
        effect = holdout_effect(frame)
        if not effect.empty and int(effect["n_holdout"].iloc[0]) > 0:
            rows = [r | {"group": i18n.code_label(language, r["group"])} for r in effect.to_dict("records")]
            for scenario, part in frame.groupby("scenario", sort=True):
                if (part["arm"] == "holdout").any() and (part["arm"] == "treatment").any():
                    itt = holdout_effect(part).iloc[0].to_dict()
                    rows.append(itt | {"group": f"{i18n.t(language, 'col_scenario')} {scenario}"})
    return Table(
        "holdout",
        i18n.t(language, "sheet_holdout"),
        _cols(
            language,
            ("group", "col_group"),
            ("n_treated", "col_n_treated", "int"),
            ("rate_treated", "col_treated", "ratio"),
            ("n_holdout", "col_n_holdout", "int"),
            ("rate_holdout", "col_holdout", "ratio"),
            ("effect", "col_effect", "points"),
            ("ci_low", "col_ci_low", "points"),
            ("ci_high", "col_ci_high", "points"),
        ),
        pd.DataFrame(rows, columns=list(HOLDOUT_COLUMNS)) if not rows else pd.DataFrame(rows),
        title=i18n.t(language, "sec_holdout"),
    )


def reminders_section(pack: FinancePack, language: str) -> Section:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    holdout = holdout_table(pack, language)
    holdout_notes = (t("holdout_note"),) if not holdout.empty else (t("holdout_none"),)
    if pack.reminder_performance is None:
        return Section(
            "reminders",
            t("sec_reminders"),
            tables=(holdout,),
            notes=(t("not_available", relation=pack.missing["reminder_performance"]), *holdout_notes),
        )
    frame = _numeric(
        pack.reminder_performance,
        ["messages", "customers", "amount_covered", "paid_14d_messages", "paid_14d_amount", "paid_14d_rate"],
    )
    frame["median_days_to_pay"] = pd.to_numeric(frame["median_days_to_pay"], errors="coerce")
    frame["channel_label"] = [i18n.code_label(language, v) for v in frame["channel"]]
    frame["tone_label"] = [i18n.code_label(language, v) for v in frame["tone"]]
    table = Table(
        "reminder_performance",
        t("sheet_reminders"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("scenario", "col_scenario"),
            ("channel_label", "col_channel"),
            ("tone_label", "col_tone"),
            ("messages", "col_messages", "int"),
            ("customers", "col_customers", "int"),
            ("amount_covered", "col_amount_covered", "money"),
            ("paid_14d_rate", "col_paid_14d_rate", "ratio"),
            ("paid_14d_amount", "col_paid_14d_amount", "money"),
            ("median_days_to_pay", "col_median_days", "days"),
        ),
        frame.sort_values(["currency", "scenario", "channel", "tone"], kind="mergesort").reset_index(drop=True),
    )
    return Section(
        "reminders",
        t("sec_reminders"),
        tables=(table, holdout),
        notes=holdout_notes,
        empty_text=t("no_rows"),
    )


def late_cost_section(pack: FinancePack, language: str) -> Section:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    if pack.late_payment_cost is None:
        relation = pack.missing["late_payment_cost"]
        return Section("late-cost", t("sec_late_cost"), unavailable=t("not_available", relation=relation))
    frame = _numeric(
        pack.late_payment_cost,
        ["overdue_amount", "amount_days_overdue", "annual_rate", "cost_to_date", "cost_last_13_weeks"],
    )
    rates = sorted({float(r) for r in frame["annual_rate"].dropna()}) or [pack.late_payment_cost_rate or math.nan]
    table = Table(
        "late_payment_cost",
        t("sheet_late_cost"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("overdue_amount", "col_overdue_amount", "money"),
            ("amount_days_overdue", "col_amount_days", "number", 0),
            ("annual_rate", "col_rate", "rate"),
            ("cost_to_date", "col_cost_to_date", "money"),
            ("cost_last_13_weeks", "col_cost_13w", "money"),
        ),
        frame.sort_values("currency").reset_index(drop=True),
    )
    note = t("late_cost_note", rate=" / ".join(i18n.percent(r, language, 2) for r in rates))
    return Section(
        "late-cost",
        t("sec_late_cost"),
        tables=(table,),
        notes=(note,),
        empty_text=t("no_rows") if frame.empty else None,
    )


def reminders_today_section(pack: FinancePack, language: str) -> Section:
    """The day's planned reminders by scenario, channel and tone, per currency (``ops.reminders_planned``)."""
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    planned = pack.reminders_today
    if planned is None or planned.empty:
        planned = pd.DataFrame(
            columns=["reminder_key", "currency", "scenario", "channel", "tone", "open_amount", "invoice_ids"]
        )
    frame = planned.copy()
    frame["open_amount"] = pd.to_numeric(frame["open_amount"], errors="coerce").astype(float)
    frame["invoices"] = frame["invoice_ids"].map(_invoice_count) if "invoice_ids" in frame else 1
    keys = ["currency", "scenario", "channel", "tone"]
    for k in keys:
        frame[k] = frame[k].fillna("-") if k in frame else "-"
    out = (
        frame.groupby(keys, sort=True)
        .agg(messages=("reminder_key", "count"), invoices=("invoices", "sum"), amount=("open_amount", "sum"))
        .reset_index()
    )
    out["channel_label"] = [i18n.code_label(language, v) for v in out["channel"]]
    out["tone_label"] = [i18n.code_label(language, v) for v in out["tone"]]
    table = Table(
        "reminders_today",
        t("sheet_reminders_today"),
        _cols(
            language,
            ("currency", "col_currency"),
            ("scenario", "col_scenario"),
            ("channel_label", "col_channel"),
            ("tone_label", "col_tone"),
            ("messages", "col_messages", "int"),
            ("invoices", "col_invoices", "int"),
            ("amount", "col_amount_covered", "money"),
        ),
        out,
    )
    return Section("reminders-today", t("sec_reminders_today"), tables=(table,), empty_text=t("no_reminders"))


def _invoice_count(value: Any) -> int:
    import json

    try:
        return len(json.loads(value)) if isinstance(value, str) and value else 1
    except ValueError:
        return 1


# --- key figures -------------------------------------------------------------------------------------------------


def _this_week(pack: FinancePack) -> pd.DataFrame:
    """The forecast's first week per currency: the one that holds the day after the as-of date, else the first."""
    if pack.forecast_weeks is None or pack.forecast_weeks.empty:
        return pd.DataFrame(columns=["currency", "expected", "p10", "p90"])
    weeks = _numeric(pack.forecast_weeks, ["expected", "p10", "p50", "p90"])
    weeks["week_start"] = pd.to_datetime(weeks["week_start"]).dt.date
    weeks["week_end"] = pd.to_datetime(weeks["week_end"]).dt.date
    weeks = weeks.sort_values(["currency", "week_start"], kind="mergesort")
    return weeks.groupby("currency", sort=True).head(1).reset_index(drop=True)


def summary_rows(pack: FinancePack) -> list[dict[str, Any]]:
    """One machine row per currency (same keys in every row, rounded, None for unknown): the Prefect table
    artifact and the workbook's summary sheet read these."""
    aged = aged_by_currency(pack).set_index("currency") if pack.currencies() else pd.DataFrame()
    dso = _dso_points(pack)
    cei = {}
    if pack.cei is not None and not pack.cei.empty:
        frame = _numeric(pack.cei, ["cei_pct"])
        totals = frame[_cei_total_mask(frame)]
        cei = {str(r["currency"]): _num(r["cei_pct"]) for r in totals.to_dict("records")}
    cash = {}
    if pack.forecast_weeks is not None and not pack.forecast_weeks.empty:
        weeks = _numeric(pack.forecast_weeks, ["expected"])
        cash = weeks.groupby("currency")["expected"].sum().to_dict()
    this_week = {str(r["currency"]): r for r in _this_week(pack).to_dict("records")}
    cost = {}
    if pack.late_payment_cost is not None:
        cost = {str(r["currency"]): _num(r["cost_to_date"]) for r in pack.late_payment_cost.to_dict("records")}

    def value(frame_row: Any, key: str) -> float:
        return _num(frame_row.get(key)) if frame_row is not None else math.nan

    rows = []
    for currency in pack.currencies():
        a = aged.loc[currency].to_dict() if currency in aged.index else None
        d = dso.get(currency, {})
        w = this_week.get(currency)
        open_ = value(a, "total_open")
        overdue = value(a, "overdue_amount")
        row = {
            "currency": currency,
            "open_receivables": open_,
            "overdue": overdue,
            "overdue_share": overdue / open_ if open_ and not math.isnan(open_) else math.nan,
            "invoices": None if math.isnan(value(a, "invoice_count")) else int(value(a, "invoice_count")),
            "dso_countback_days": d.get("dso_countback", math.nan),
            "dso_countback_last_week": d.get("dso_countback_last_week", math.nan),
            "dso_simple_days": d.get("dso_simple", math.nan),
            "cei_13w_pct": cei.get(currency, math.nan),
            "cash_expected_this_week": value(w, "expected"),
            "cash_this_week_p10": value(w, "p10"),
            "cash_this_week_p90": value(w, "p90"),
            "cash_expected_13w": _num(cash.get(currency)),
            "forecast_wape": _num(pack.wape.get(currency)),
            "late_payment_cost_to_date": cost.get(currency, math.nan),
        }
        rows.append({k: _clean(v) for k, v in row.items()})
    return rows


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value


def key_figures(pack: FinancePack, language: str, kind: Kind, rows: list[dict[str, Any]]) -> list[KeyFigure]:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    specs: list[tuple[str, str, ColumnKind, int]] = [
        ("open_receivables", t("kf_open"), "money", 2),
        ("overdue", t("kf_overdue"), "money", 2),
        ("overdue_share", t("kf_overdue_share"), "ratio", 1),
        ("dso_countback_days", t("kf_dso"), "days", 1),
        ("dso_countback_last_week", t("kf_dso_last_week"), "days", 1),
        ("dso_change", t("kf_dso_change"), "days", 1),
        ("dso_simple_days", t("kf_dso_simple"), "days", 1),
        ("cash_expected_this_week", t("kf_cash_week"), "money", 2),
        ("cash_this_week_range", t("kf_cash_range"), "text", 0),
    ]
    if kind == "weekly":
        specs += [
            ("cei_13w_pct", t("kf_cei"), "percent", 1),
            ("cash_expected_13w", t("kf_cash_13w", weeks=pack.forecast_weeks_count), "money", 2),
            ("forecast_wape", t("kf_wape"), "ratio", 1),
            ("late_payment_cost_to_date", t("kf_cost"), "money", 2),
        ]
    figures = []
    for key, label, col_kind, decimals in specs:
        values: dict[str, Any] = {}
        texts: dict[str, str] = {}
        for r in rows:
            currency = r["currency"]
            if key == "dso_change":
                now, before = r["dso_countback_days"], r["dso_countback_last_week"]
                v = None if now is None or before is None else now - before
                values[currency] = v
                texts[currency] = (
                    t("days_unit", value=i18n.signed_number(v, language)) if v is not None else t("missing")
                )
                continue
            if key == "cash_this_week_range":
                low, high = r["cash_this_week_p10"], r["cash_this_week_p90"]
                values[currency] = None
                texts[currency] = (
                    f"{i18n.money(low, currency, language, 0)} – {i18n.money(high, currency, language, 0)}"
                    if low is not None and high is not None
                    else t("missing")
                )
                continue
            v = r[key]
            values[currency] = v
            texts[currency] = (
                i18n.days(v, language, decimals)
                if col_kind == "days"
                else format_value(v, col_kind, language, currency, decimals)
            )
        figures.append(KeyFigure(key, label, col_kind, values, texts, decimals))
    return figures


# --- charts' data --------------------------------------------------------------------------------------------------


def chart_specs(pack: FinancePack, language: str) -> dict[str, Chart]:
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    charts: dict[str, Chart] = {}
    aged = aged_by_currency(pack)
    if not aged.empty:
        labels = [t(f"col_{b}") for b in BUCKET_COLUMNS]
        charts["aged"] = Chart(
            "aged",
            "aged",
            t("chart_aged", currency="{currency}"),
            t("chart_alt_aged"),
            {
                "labels": labels,
                "series": {str(r["currency"]): [float(r[b]) for b in BUCKET_COLUMNS] for r in aged.to_dict("records")},
            },
        )
    if pack.dso_trend is not None and not pack.dso_trend.empty:
        frame = _numeric(pack.dso_trend, ["dso_countback_days", "dso_simple_days"])
        frame["week_end_date"] = pd.to_datetime(frame["week_end_date"]).dt.date
        charts["dso"] = Chart(
            "dso",
            "dso",
            t("chart_dso", currency="{currency}"),
            t("chart_alt_dso"),
            {
                "series": {
                    str(c): {
                        "dates": list(p.sort_values("week_end_date")["week_end_date"]),
                        "countback": list(p.sort_values("week_end_date")["dso_countback_days"]),
                        "simple": list(p.sort_values("week_end_date")["dso_simple_days"]),
                    }
                    for c, p in frame.groupby("currency", sort=True)
                },
                "labels": {"countback": t("kf_dso"), "simple": t("kf_dso_simple")},
            },
        )
    if pack.forecast_weeks is not None and not pack.forecast_weeks.empty:
        weeks = _numeric(pack.forecast_weeks, ["expected", "p10", "p50", "p90"])
        weeks["week_start"] = pd.to_datetime(weeks["week_start"]).dt.date
        back = pack.forecast_backtest
        if back is not None and not back.empty:
            back = _numeric(back, ["forecast", "actual"])
            back["week_start"] = pd.to_datetime(back["week_start"]).dt.date
        series = {}
        for currency, part in weeks.groupby("currency", sort=True):
            part = part.sort_values("week_start")
            past = (
                back[back["currency"] == currency].sort_values("week_start")
                if back is not None and not back.empty
                else pd.DataFrame(columns=["week_start", "forecast", "actual"])
            )
            series[str(currency)] = {
                "weeks": list(part["week_start"]),
                "expected": list(part["expected"]),
                "p10": list(part["p10"]),
                "p50": list(part["p50"]),
                "p90": list(part["p90"]),
                "past_weeks": list(past["week_start"]),
                "past_forecast": list(past["forecast"]),
                "past_actual": list(past["actual"]),
            }
        charts["forecast"] = Chart(
            "forecast",
            "forecast",
            t("chart_forecast", currency="{currency}"),
            t("chart_alt_forecast"),
            {
                "series": series,
                "as_of": pack.as_of_date,
                "labels": {
                    "actual": t("chart_actual"),
                    "past_forecast": t("chart_forecast_past"),
                    "expected": t("chart_expected"),
                    "p50": t("col_p50"),
                    "band": t("chart_band"),
                    "today": t("chart_today"),
                },
            },
        )
    return charts


# --- the document --------------------------------------------------------------------------------------------------


def build_document(
    pack: FinancePack, kind: Kind, language: str, *, generated_at: datetime | None = None
) -> FinanceDocument:
    """The weekly report or the daily flash of ``pack`` in ``language``: sections, key figures, charts. Pure."""
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; expected one of {KINDS}")
    language = i18n.check_language(language)
    t = lambda key, **kw: i18n.t(language, key, **kw)  # noqa: E731
    date_text = i18n.day(pack.as_of_date, language)
    rows = summary_rows(pack)
    banners = []
    if pack.model_note:
        banners.append(t("banner_model", model=pack.model_version or t("model_none"), note=pack.model_note.strip()))
    if pack.stale_sources:
        sources = ", ".join(f"{name} ({since})" for name, since in sorted(pack.stale_sources.items()))
        banners.append(t("banner_stale", sources=sources))
    if kind == "weekly":
        sections = [
            *aged_sections(pack, language),
            dso_section(pack, language),
            cei_section(pack, language),
            *forecast_sections(pack, language),
            at_risk_section(pack, language),
            alerts_section(pack, language),
            reminders_section(pack, language),
            late_cost_section(pack, language),
        ]
        charts = chart_specs(pack, language)
    else:
        sections = [alerts_section(pack, language, only_day=True), reminders_today_section(pack, language)]
        charts = {}
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M")
    return FinanceDocument(
        kind=kind,
        language=language,
        as_of_date=pack.as_of_date,
        title=t(f"{kind}_title", date=date_text),
        subject=t(f"{kind}_subject", date=date_text),
        intro=t(f"intro_{kind}"),
        meta=" · ".join(
            [t("meta", run=pack.flow_run_id or t("run_local"), generated=generated)]
            + ([t("meta_model", model=pack.model_version)] if pack.model_version else [])
        ),
        banners=tuple(banners),
        currencies=tuple(r["currency"] for r in rows),
        key_figures=tuple(key_figures(pack, language, kind, rows)),
        sections=tuple(sections),
        charts=charts,
        summary_rows=tuple(rows),
        workbook_notes=pack.forecast_notes if kind == "weekly" else (),
    )


# --- markdown (Prefect artifact) -----------------------------------------------------------------------------------


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!])")


def _md(text: Any) -> str:
    """Text for a markdown cell: one line, with the characters markdown would act on escaped (a customer named
    ``[x](https://...)`` or ``<img ...>`` stays text in the Prefect UI)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))


def markdown(document: FinanceDocument, *, files: Sequence[str] = ()) -> str:
    """The document as markdown for a Prefect artifact: title, banners, key figures by currency, each section's
    notes and its first table (top rows), and where the files are."""
    lang = document.language
    lines = [f"# {document.title}", "", document.intro, ""]
    lines += [f"> **{_md(b)}**" for b in document.banners]
    if document.currencies:
        lines += ["", f"## {i18n.t(lang, 'sec_key_figures')}", ""]
        lines.append("| " + " | ".join([i18n.t(lang, "col_metric"), *document.currencies]) + " |")
        lines.append("|" + "---|" * (len(document.currencies) + 1))
        for kf in document.key_figures:
            lines.append("| " + " | ".join([_md(kf.label), *(_md(kf.texts[c]) for c in document.currencies)]) + " |")
    for section in document.sections:
        lines += ["", f"## {_md(section.title)}", ""]
        if section.unavailable:
            lines.append(f"_{_md(section.unavailable)}_")
            continue
        lines += [_md(n) for n in section.notes]
        filled = [t for t in section.tables if not t.empty]
        if filled:
            table = filled[0]
            shown = table.rows_for_html().head(10)
            lines += ["", "| " + " | ".join(_md(c.label) for c in table.columns) + " |"]
            lines.append("|" + "---|" * len(table.columns))
            for r in shown.to_dict("records"):
                cells = [format_value(r.get(c.key), c.kind, lang, r.get("currency"), c.decimals) for c in table.columns]
                lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
        elif section.empty_text:
            lines.append(f"_{_md(section.empty_text)}_")
    if files:
        lines += ["", "---", ""] + [f"- `{f}`" for f in files]
    return "\n".join(lines) + "\n"
