"""The finance report: files where promised, numbers as given, a real PNG inline, a rectangular summary, and
what a reader sees: French bucket labels, one at-risk table per currency, amounts (not ``1e7``) on the chart.
HTML assertions read the parsed text and table cells, never substrings of a page that holds a base64 image."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, datetime
from html.parser import HTMLParser

import duckdb
import pandas as pd
import pytest

from relance import ops
from relance.reports.finance import BUCKETS, aged_balance_figure, target_heading, write_finance_report
from relance.warehouse import ensure_schemas

AS_OF = date(2026, 3, 31)
NNBSP, NBSP = "\u202f", "\u00a0"  # thousands separator, before the currency symbol


def _squash(text: str) -> str:
    """Collapse runs of HTML whitespace, keeping the no-break spaces of the amounts (str.split would not)."""
    return re.sub(r"[ \t\n\r\f]+", " ", text).strip()


class _Page(HTMLParser):
    """The text of a page (tags and attributes such as the base64 image left out) and its tables: attributes,
    header cells and body rows, each cell's text with whitespace collapsed."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False
        self.feed(html)
        self.close()

    @property
    def text(self) -> str:
        return _squash(" ".join(self.chunks))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append({"attrs": dict(attrs), "head": [], "rows": []})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append(_squash(" ".join(self._cell)))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if self._in_head:
                table["head"] = self._row
            else:
                table["rows"].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    aged = pd.DataFrame(
        {
            "as_of_date": [pd.Timestamp(AS_OF)] * 5,
            "currency": ["EUR", "EUR", "EUR", "USD", "USD"],
            "aging_bucket": ["not_due", "1-30", "90+", "31-60", "61-90"],
            "invoice_count": [1843, 4, 2, 1, 3],
            "open_amount": [12000.0, 3500.5, 800.0, 999.99, 250.0],
        }
    )
    dso = pd.DataFrame(
        {
            "as_of_date": [pd.Timestamp(AS_OF)] * 2,
            "currency": ["EUR", "USD"],
            "receivables": [16300.5, 1249.99],
            "sales_90d": [30000.0, 2000.0],
            "dso_days": [48.9, None],
        }
    )
    # As serving.report_at_risk_exposure gives it: ranked within currency, rows of both currencies mixed.
    at_risk = pd.DataFrame(
        {
            "as_of_date": [pd.Timestamp(AS_OF)] * 5,
            "invoice_id": ["F-2", "U-1", "F-1", "U-2", "F-3"],
            "customer_id": ["C2", "C3", "C1", "C4", "C5"],
            "customer_name": ["Beta <SARL>", "Gamma", "Alpha SA", "Delta", "Epsilon"],
            "currency": ["EUR", "USD", "EUR", "USD", "EUR"],
            "open_amount": [3000.0, 9000.0, 5000.0, 100.0, 500.0],
            "days_overdue": [40, 10, 95, -5, 3],
            "p_late": [0.5, 0.2, 0.9, 0.2, 0.1],
            "target_name": ["unpaid_30d_after_due"] * 5,
            "risk_grade": ["C", "B", "E", "A", None],
            "predicted_payment_date": [pd.Timestamp("2026-05-02"), None, pd.Timestamp("2026-06-15"), None, None],
            "reason_1": ["Customer paid 62% of past invoices late", None, "Already 95 days overdue", None, None],
            "expected_at_risk": [1500.0, 1800.0, 4500.0, 20.0, 50.0],
            "risk_rank": [2, 1, 1, 2, 3],
        }
    )
    return aged, dso, at_risk


def test_report_files_summary_and_inline_chart(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="7", flow_run_id="fr-1", top_n=2
    )

    day_dir = tmp_path / "2026-03-31"
    assert report.html_path == day_dir / "finance_report.html"
    assert set(report.csv_paths) == {"aged_balance", "dso", "at_risk"}
    assert all(p.parent == day_dir and p.exists() for p in report.csv_paths.values())
    assert len(pd.read_csv(report.csv_paths["at_risk"])) == 5  # CSV keeps every row given
    pd.testing.assert_series_equal(
        pd.read_csv(report.csv_paths["aged_balance"])["open_amount"], aged["open_amount"], check_names=False
    )

    assert report.summary_rows == [
        {
            "currency": "EUR",
            "not_due": 12000.0,
            "1-30": 3500.5,
            "31-60": 0.0,
            "61-90": 0.0,
            "90+": 800.0,
            "total_open": 16300.5,
            "invoices": 1849,
            "dso_days": 48.9,
        },
        {
            "currency": "USD",
            "not_due": 0.0,
            "1-30": 0.0,
            "31-60": 999.99,
            "61-90": 250.0,
            "90+": 0.0,
            "total_open": 1249.99,
            "invoices": 4,
            "dso_days": None,
        },
    ]

    html = report.html_path.read_text(encoding="utf-8")
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert match, "the aged-balance chart must be inlined"
    assert base64.b64decode(match.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html  # self-contained
    assert not list(tmp_path.rglob("*.tmp"))

    page = _Page(html)
    assert "Modèle de risque : 7 · exécution : fr-1" in page.text
    assert "Aucun modèle n’a été entraîné" not in page.text  # no banner when training happened
    assert "gt;" not in page.text and "&" not in page.text  # no entity shown as text (escaped twice, or broken)
    aged_table, dso_table, *risk_tables = page.tables

    # Aged balance: French bucket headers in order, machine keys nowhere on the page.
    assert aged_table["head"] == ["Devise", "Non échu", "1 à 30 j", "31 à 60 j", "61 à 90 j", "Plus de 90 j", "Total"]
    assert not {"not_due", "1-30", "90+"} & set(page.text.split(" "))
    eur = aged_table["rows"][0]
    assert eur[0] == "EUR" and eur[1] == f"12{NNBSP}000,00{NBSP}€ 1{NNBSP}843 fact."
    assert eur[3] == f"0,00{NBSP}€ 0 fact."  # 31 à 60 j: no invoice
    assert eur[-1] == f"16{NNBSP}300,50{NBSP}€"
    assert dso_table["rows"] == [
        ["EUR", f"16{NNBSP}300,50{NBSP}€", f"30{NNBSP}000,00{NBSP}€", "48,9"],
        ["USD", f"1{NNBSP}249,99{NBSP}$", f"2{NNBSP}000,00{NBSP}$", "n/d"],
    ]

    # At risk: one table per currency, its own rows only, by rank, top_n=2 of each; header not mangled.
    assert [t["attrs"].get("data-currency") for t in risk_tables] == ["EUR", "USD"]
    header = [
        "Rang",
        "Facture",
        "Client",
        "Note",
        "Restant dû",
        "Retard (j)",
        "P(impayée à 30 j)",  # the target the scores estimate, in words
        "Paiement prévu",
        "Exposition",
    ]
    assert all(t["head"] == header for t in risk_tables)
    eur_risk, usd_risk = ([row[:4] + row[-2:] for row in t["rows"]] for t in risk_tables)
    assert eur_risk == [
        ["1", "F-1", "Alpha SA Already 95 days overdue", "E", "2026-06-15", f"4{NNBSP}500,00{NBSP}€"],
        [
            "2",
            "F-2",
            "Beta <SARL> Customer paid 62% of past invoices late",
            "C",
            "2026-05-02",
            f"1{NNBSP}500,00{NBSP}€",
        ],
    ]  # F-3 (rank 3) left out; the customer's grade, the median payment date and the main reason beside each
    assert usd_risk == [
        ["1", "U-1", "Gamma", "B", "", f"1{NNBSP}800,00{NBSP}$"],
        ["2", "U-2", "Delta", "A", "", f"20,00{NBSP}$"],
    ]
    assert all(len(row) == len(header) for t in risk_tables for row in t["rows"])
    assert "Beta &lt;SARL&gt;" in html and "&amp;" not in html  # escaped once


def test_empty_day_still_writes_a_report(tmp_path) -> None:
    aged, dso, at_risk = (f.iloc[0:0] for f in _frames())
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version=None, flow_run_id=None
    )
    html = report.html_path.read_text(encoding="utf-8")
    page = _Page(html)
    assert "Aucune facture ouverte." in page.text and "Aucune facture à risque." in page.text
    assert page.tables == [] and "data:image/png" not in html
    assert report.summary_rows == []


def test_chart_axis_shows_amounts_not_scientific_notation() -> None:
    """Balances in the millions: every y tick is a whole amount with thousands separators and the currency
    symbol, no ``1e7`` offset above the axis; buckets on the x axis are the French labels."""
    amounts = pd.DataFrame(
        [[12_500_000.0, 3_200_000.0, 850_000.0, 0.0, 1_100_000.0], [2_400_000.0, 0.0, 310_000.0, 95_000.0, 0.0]],
        index=pd.Index(["EUR", "GBP"], name="currency"),
        columns=list(BUCKETS),
    )
    fig = aged_balance_figure(amounts, AS_OF)
    assert fig is not None
    fig.canvas.draw()
    amount = re.compile(rf"^(0|\u2212?[1-9]\d{{0,2}}(\u202f\d{{3}})*){NBSP}(?P<symbol>[€£])$")
    for ax, symbol in zip(fig.axes, ["€", "£"], strict=True):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(labels) >= 3
        assert all((m := amount.match(label)) and m["symbol"] == symbol for label in labels), labels
        assert ax.yaxis.get_offset_text().get_text() == ""
        assert [t.get_text() for t in ax.get_xticklabels()] == [
            "Non échu",
            "1 à 30 j",
            "31 à 60 j",
            "61 à 90 j",
            "Plus de 90 j",
        ]
    assert fig.axes[0].yaxis.get_major_formatter()(10_000_000, 0) == f"10{NNBSP}000{NNBSP}000{NBSP}€"
    assert f"12{NNBSP}500{NNBSP}000{NBSP}€" in [t.get_text() for t in fig.axes[0].texts]  # the bar's own label


def test_bad_input_is_rejected_clearly(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    with pytest.raises(ValueError, match="report_dso frame is missing columns \\['dso_days'\\]"):
        write_finance_report(
            aged,
            dso.drop(columns="dso_days"),
            at_risk,
            as_of_date=AS_OF,
            out_dir=tmp_path,
            model_version=None,
            flow_run_id=None,
        )
    with pytest.raises(ValueError, match="unknown aging buckets \\['120\\+'\\]"):
        write_finance_report(
            aged.assign(aging_bucket="120+"),
            dso,
            at_risk,
            as_of_date=AS_OF,
            out_dir=tmp_path,
            model_version=None,
            flow_run_id=None,
        )


def test_report_run_is_recorded_once_per_flow_run(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="7", flow_run_id="fr-1"
    )
    con = duckdb.connect()
    ensure_schemas(con)

    def record(flow_run_id: str | None) -> str:
        return ops.record_report_run(
            con,
            kind="finance",
            as_of_date=AS_OF,
            html_path=str(report.html_path),
            csv_paths={k: str(v) for k, v in report.csv_paths.items()},
            model_version="7",
            created_at=datetime(2026, 10, 31, 7),
            flow_run_id=flow_run_id,
        )

    first, again, other = record("fr-1"), record("fr-1"), record(None)
    assert first == again != other
    rows = con.sql("SELECT * FROM ops.report_runs ORDER BY report_id").df()
    assert len(rows) == 2
    assert json.loads(rows.loc[0, "csv_paths"])["dso"] == str(report.csv_paths["dso"])
    assert rows.loc[0, "html_path"] == str(report.html_path)


def test_a_day_without_training_opens_with_a_banner_saying_why(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    reason = "not trained: test rows (1523, 2013-07-10..2013-11-27) hold a single is_late class [0]; champion v3 kept"
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="3", flow_run_id="fr-2",
        model_note=reason,
    )  # fmt: skip
    html = report.html_path.read_text(encoding="utf-8")
    page = _Page(html)
    banner = re.search(r'<div class="banner" role="alert" id="model-not-trained">(.*?)</div>', html, re.S)
    assert banner, "the banner is a block of its own"
    text = _squash(_Page(banner.group(1)).text)
    assert text.startswith("Aucun modèle n’a été entraîné pour ce rapport.")
    assert "les probabilités viennent du modèle 3" in text and text.endswith(f"Raison : {reason}")
    # before the tables: a reader sees it first
    assert page.text.index("Aucun modèle n’a été entraîné") < page.text.index("Balance âgée")
    # a blank note is no note
    again = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="3", flow_run_id="fr-2",
        model_note="  ",
    )  # fmt: skip
    assert 'id="model-not-trained"' not in again.html_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("targets", "heading"),
    [
        (["late_any"], "P(retard)"),
        (["late_over_5d", "late_over_5d"], "P(retard > 5 j)"),
        (["unpaid_30d_after_due"], "P(impayée à 30 j)"),
        (["unpaid_14d_after_as_of"], "P(impayée dans 14 j)"),
        ([None, float("nan")], "P(retard)"),  # rows scored before the target was stored
        (["late_any", "late_over_5d"], "P(retard)"),  # two targets: no single promise in the heading
        (["churn_90d"], "P(retard)"),
    ],
)
def test_the_probability_heading_names_the_target(targets, heading) -> None:
    got, tooltip = target_heading(targets)
    assert got == heading
    named = sorted({t for t in targets if isinstance(t, str)})
    assert all(name in tooltip for name in named)


def test_risk_sections_alerts_claims_and_the_stale_banner(tmp_path) -> None:
    aged, dso, at_risk = _frames()
    at_risk = at_risk.assign(has_open_procedure=[True] + [False] * (len(at_risk) - 1))
    alerts = pd.DataFrame(
        [
            {"alert_type": "director_change", "title": "Changement de dirigeant : DANONE",
             "detail": "Publié le 20/03/2026 (bodacc) : administration. Avis : https://www.bodacc.fr/x?q.id=id:B1",
             "due_date": pd.NaT, "as_of_date": AS_OF},  # as read back from ops.risk_alerts: NaT, not None
            {"alert_type": "claim_deadline", "title": "Déclaration de créance dans 10 jours : <b>X</b>",
             "detail": "Déclarer avant le 10/04/2026", "due_date": date(2026, 4, 10), "as_of_date": AS_OF},
        ]
    )  # fmt: skip
    claims = pd.DataFrame(
        [
            {"claim_id": "A1:EUR", "customer_id": "C1", "customer_name": "DJ BATIMENT", "procedure_kind": "liquidation",
             "court": "TC Bordeaux", "published_date": date(2026, 2, 10), "deadline_date": date(2026, 4, 10),
             "days_to_deadline": 10, "currency": "EUR", "amount_due": 1200.5, "amount_not_yet_due": 300.0,
             "status": "to_declare"},
        ]
    )  # fmt: skip
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="3", flow_run_id="fr",
        alerts=alerts, claims=claims, stale_sources={"bodacc": "last good answer 2026-03-27 06:00 UTC: HTTP 503"},
    )  # fmt: skip
    html = report.html_path.read_text(encoding="utf-8")
    text = _squash(_Page(html).text)
    assert 'id="risk-data-stale"' in html and "bodacc (last good answer 2026-03-27 06:00 UTC: HTTP 503)" in text
    assert text.index("possiblement périmées") < text.index("Balance âgée")  # read first
    assert "Changement de dirigeant : DANONE" in text and '<a href="https://www.bodacc.fr/x?q.id=id:B1">' in html
    assert "&lt;b&gt;X&lt;/b&gt;" in html  # a name from the data is text, never markup
    assert (
        "DJ BATIMENT liquidation TC Bordeaux 10/02/2026 10/04/2026 10 1\u202f200,50\u00a0€ 300,00\u00a0€ à déclarer"
        in text
    )
    assert "procédure collective" in text  # the debtor in procedure is marked in the exposure table
    assert report.csv_paths["claims"].read_text(encoding="utf-8").startswith("claim_id,")
    quiet = write_finance_report(
        aged, dso, at_risk.drop(columns="has_open_procedure"), as_of_date=AS_OF, out_dir=tmp_path / "q",
        model_version="3", flow_run_id="fr",
    )  # fmt: skip
    quiet_html = quiet.html_path.read_text(encoding="utf-8")
    assert 'id="risk-data-stale"' not in quiet_html and "Aucune alerte récente." in quiet_html
    assert "Aucune créance à déclarer." in quiet_html and "claims" not in quiet.csv_paths
