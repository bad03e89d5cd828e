"""The finance report's charts as PNG bytes: one panel per currency (amounts of two currencies never share an axis).

* ``aged``: the aged balance, one bar per bucket;
* ``dso``: countback and simple DSO over the 13 week ends;
* ``forecast``: the fan chart: the past weeks' actual cash-in (bars) and what was forecast for them at the time
  (points), then the coming weeks' expected cash-in with its p10–p90 band and the median, a line at the as-of date.

The data come already shaped by :func:`relance.reports.finance_tables.chart_specs`; this module only draws. It uses
matplotlib's Agg canvas directly (no pyplot, no global state, no display) and a fixed DPI, so the same input gives
the same picture.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from relance.reports import i18n
from relance.reports.finance_tables import Chart

DPI = 150
WIDTH_IN = 7.2  # 1080 px at DPI: sharp when an email shows it 680 px wide
PANEL_IN = 2.5
BUCKET_COLOURS: tuple[str, ...] = ("#4c9a5b", "#c8b43c", "#e08a2c", "#d2562b", "#a11d21")
BLUE, GREY, ORANGE = "#2f6690", "#9aa5b1", "#d2562b"


def _amount_axis(ax: Any, currency: str, language: str) -> None:
    """Whole amounts in the reader's format, never ``1e7`` (a FuncFormatter has no offset, no exponent)."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: i18n.money(v, currency, language, decimals=0)))


def _style(ax: Any) -> None:
    ax.tick_params(axis="both", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def _figure(panels: int) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(WIDTH_IN, PANEL_IN * max(panels, 1)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(max(panels, 1), 1, squeeze=False)[:, 0])
    return fig, axes


def _aged(chart: Chart, language: str) -> Figure:
    series: dict[str, list[float]] = chart.data["series"]
    fig, axes = _figure(len(series))
    for ax, (currency, values) in zip(axes, series.items(), strict=True):
        bars = ax.bar(chart.data["labels"], values, color=BUCKET_COLOURS)
        ax.bar_label(bars, labels=[i18n.money(v, currency, language, 0) for v in values], fontsize=7, padding=2)
        ax.set_title(chart.title.format(currency=currency), fontsize=9, loc="left")
        _amount_axis(ax, currency, language)
        _style(ax)
        ax.margins(y=0.18)
    return fig


def _dso(chart: Chart, language: str) -> Figure:
    series: dict[str, dict[str, list]] = chart.data["series"]
    labels = chart.data["labels"]
    fig, axes = _figure(len(series))
    for ax, (currency, s) in zip(axes, series.items(), strict=True):
        x = list(range(len(s["dates"])))
        ax.plot(x, s["countback"], marker="o", markersize=3, color=BLUE, label=labels["countback"], linewidth=1.6)
        ax.plot(x, s["simple"], linestyle="--", color=GREY, label=labels["simple"], linewidth=1.2)
        last = s["countback"][-1] if s["countback"] else None
        if last is not None and last == last:
            ax.annotate(
                i18n.days(last, language),
                (x[-1], last),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color=BLUE,
            )
        ax.set_xticks(x, [i18n.short_day(d, language) for d in s["dates"]], rotation=0)
        ax.set_title(chart.title.format(currency=currency), fontsize=9, loc="left")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: i18n.number(v, language, 0)))
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
        _style(ax)
        ax.margins(y=0.2)
    return fig


def _forecast(chart: Chart, language: str) -> Figure:
    series: dict[str, dict[str, list]] = chart.data["series"]
    labels = chart.data["labels"]
    fig, axes = _figure(len(series))
    for ax, (currency, s) in zip(axes, series.items(), strict=True):
        past_n, future_n = len(s["past_weeks"]), len(s["weeks"])
        past_x = list(range(past_n))
        future_x = list(range(past_n, past_n + future_n))
        if past_n:
            ax.bar(past_x, s["past_actual"], color="#c9d6e3", label=labels["actual"], width=0.7)
            ax.plot(
                past_x, s["past_forecast"], linestyle="none", marker="D", markersize=3.5, color=ORANGE,
                label=labels["past_forecast"],
            )  # fmt: skip
        ax.fill_between(future_x, s["p10"], s["p90"], color=BLUE, alpha=0.18, linewidth=0, label=labels["band"])
        ax.plot(future_x, s["p50"], color=BLUE, linewidth=1.0, linestyle=":", label=labels["p50"])
        ax.plot(
            future_x, s["expected"], color=BLUE, linewidth=1.8, marker="o", markersize=2.5, label=labels["expected"]
        )
        if past_n:
            ax.axvline(past_n - 0.5, color="#555555", linewidth=0.8)
            ax.annotate(
                labels["today"], (past_n - 0.5, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                textcoords="offset points", fontsize=7, color="#555555",
            )  # fmt: skip
        dates = [*s["past_weeks"], *s["weeks"]]
        step = 2 if len(dates) > 14 else 1
        ticks = list(range(0, len(dates), step))
        ax.set_xticks(ticks, [i18n.short_day(dates[i], language) for i in ticks], rotation=45, ha="right")
        ax.set_title(chart.title.format(currency=currency), fontsize=9, loc="left")
        _amount_axis(ax, currency, language)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=5)
        _style(ax)
    return fig


_DRAW = {"aged": _aged, "dso": _dso, "forecast": _forecast}


def chart_png(chart: Chart, language: str) -> bytes:
    """The chart as a PNG (bytes)."""
    fig = _DRAW[chart.kind](chart, language)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
