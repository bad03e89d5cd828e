"""The weekly report and the flash as HTML that survives an email client: inline styles on every element (no
``<style>`` block to be stripped), tables for layout, a 760-pixel column, charts as ``<img>``.

:func:`render_html` takes where each chart's image comes from: ``cid:<id>`` for the email (the PNGs travel as
inline attachments with that Content-ID) or ``data:image/png;base64,...`` for the archived file, which then opens
on its own. The template is autoescaped; every value reaches it as text formatted by
:func:`relance.reports.finance_tables.format_value`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from relance.reports import i18n
from relance.reports.finance_tables import FinanceDocument, Table, format_value

TEMPLATE = "finance_outputs.html.j2"

#: Inline styles, one place (email clients drop <style> blocks; attributes survive).
STYLES: dict[str, str] = {
    "body": "margin:0;padding:0;background:#f4f5f7;",
    "wrap": "width:100%;background:#f4f5f7;",
    "main": "width:100%;max-width:760px;margin:0 auto;background:#ffffff;border-collapse:collapse;",
    "cell": "padding:20px 28px;font-family:Arial,Helvetica,sans-serif;color:#222222;font-size:14px;line-height:1.4;",
    "h1": "font-size:22px;margin:0 0 6px 0;color:#1b2a3a;font-weight:bold;",
    "h2": "font-size:17px;margin:26px 0 8px 0;padding-bottom:4px;border-bottom:2px solid #2f6690;color:#1b2a3a;",
    "h3": "font-size:14px;margin:16px 0 6px 0;color:#1b2a3a;",
    "meta": "color:#666666;font-size:12px;margin:0 0 10px 0;",
    "note": "color:#555555;font-size:12px;margin:4px 0 8px 0;",
    "banner": "border:1px solid #d2a200;background:#fff6d6;padding:10px 14px;margin:10px 0;font-size:13px;",
    "empty": "color:#888888;font-style:italic;font-size:13px;margin:6px 0;",
    "table": "border-collapse:collapse;width:100%;font-size:12px;margin:4px 0 10px 0;",
    "th": "text-align:left;padding:5px 6px;border-bottom:2px solid #c9d6e3;background:#f0f4f8;color:#1b2a3a;"
    "vertical-align:bottom;",
    "th_num": "text-align:right;padding:5px 6px;border-bottom:2px solid #c9d6e3;background:#f0f4f8;color:#1b2a3a;"
    "vertical-align:bottom;",
    "td": "text-align:left;padding:4px 6px;border-bottom:1px solid #eeeeee;vertical-align:top;",
    "td_date": "text-align:left;padding:4px 6px;border-bottom:1px solid #eeeeee;white-space:nowrap;vertical-align:top;",
    "td_num": "text-align:right;padding:4px 6px;border-bottom:1px solid #eeeeee;white-space:nowrap;vertical-align:top;",
    "total": "font-weight:bold;background:#fafafa;",
    "kf_value": "text-align:right;padding:6px 8px;border-bottom:1px solid #eeeeee;font-size:15px;font-weight:bold;"
    "white-space:nowrap;color:#1b2a3a;",
    "kf_label": "text-align:left;padding:6px 8px;border-bottom:1px solid #eeeeee;font-size:13px;color:#444444;",
    "img": "display:block;width:100%;max-width:704px;height:auto;border:0;margin:6px 0 10px 0;",
    "footer": "color:#888888;font-size:11px;padding:14px 28px;font-family:Arial,Helvetica,sans-serif;",
}
_NUMERIC = {"money", "int", "number", "days", "ratio", "percent", "points", "rate"}


def table_view(table: Table, language: str) -> dict[str, Any]:
    """A table as head and body cells of text, each with its style (numbers right-aligned, totals bold)."""
    columns = table.columns_for_html()
    head = [{"text": c.label, "style": STYLES["th_num" if c.kind in _NUMERIC else "th"]} for c in columns]
    rows = []
    for record in table.rows_for_html().to_dict("records"):
        total = record.get("_total") in (True, 1)  # a numpy bool too; NaN and None are not totals
        cells = []
        for c in columns:
            kind = "td_num" if c.kind in _NUMERIC else "td_date" if c.kind == "date" else "td"
            style = STYLES[kind] + (STYLES["total"] if total else "")
            text = format_value(record.get(c.key), c.kind, language, record.get("currency"), c.decimals)
            cells.append({"text": text, "style": style})
        rows.append(cells)
    shown, all_rows = len(rows), len(table.frame)
    more = all_rows - shown
    return {
        "name": table.name,
        "title": table.title,
        "head": head,
        "rows": rows,
        "more": i18n.t(language, "more_rows", n=more) if more > 0 else None,
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("relance.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(document: FinanceDocument, images: Mapping[str, str], *, attachments: Sequence[str] = ()) -> str:
    """The document as one HTML page; ``images`` maps a chart id to its ``src`` (``cid:...`` or a data URI).
    A chart without an image is left out."""
    lang = document.language
    sections = []
    for s in document.sections:
        sections.append(
            {
                "id": s.id,
                "title": s.title,
                "notes": list(s.notes),
                "unavailable": s.unavailable,
                "empty_text": s.empty_text if all(t.empty for t in s.tables) else None,
                "charts": [
                    {"src": images[c], "alt": document.charts[c].alt}
                    for c in s.charts
                    if c in images and c in document.charts
                ],
                "tables": [table_view(t, lang) for t in s.tables if not t.empty],
            }
        )
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            doc=document,
            lang=lang,
            st=STYLES,
            sections=sections,
            attachments=list(attachments),
            key_figures=[
                {"label": k.label, "cells": [k.texts[c] for c in document.currencies]} for k in document.key_figures
            ],
            kf_title=i18n.t(lang, "sec_key_figures"),
            attachment_text=[i18n.t(lang, "attachments", name=a) for a in attachments],
        )
    )
