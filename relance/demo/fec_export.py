"""Write the demo receivables as an FEC, the way an accounting package would export the same books.

Why: the FEC reader (:mod:`relance.sources.fec`) must be proven on the demo's known state, not only on real
files whose truth is unknown. Importing this file must give the same invoice and payment state as importing
the demo's tabular export (``tests/integration/test_fec_import.py`` checks it invoice by invoice).

What is written (tab separated, UTF-8, the 18 legal columns plus ``DateRglt`` for due dates):

* sales journal ``VE`` ("Ventes"): one entry per invoice (411 debit; 706 revenue and 44571 VAT at 20 %
  credited) and per credit note (the mirror image);
* bank journal ``BQ`` ("Banque"): one entry per payment: 512 debited with the total, and one 411 credit line
  per invoice the payment is allocated to (a receipt split per invoice, as accountants book it), plus an
  unlettered 411 line for any unallocated remainder;
* ``PieceRef`` is the demo id (invoice, credit note or payment), so the reader's rule "a ``PieceRef`` unique
  among document lines is the id" maps ids back; ``CompAuxNum``/``CompAuxLib`` are the customer id and name
  under the collective account 411000;
* lettering: one code per invoice that has received a payment or a credit note, on the invoice's line and
  on every payment line and credit note settling it. Upper case when the invoice is fully settled (with
  ``DateLet`` = the day it was), lower case while it is partly settled (partial lettering, no ``DateLet``),
  the convention of Sage and others. Each payment line carries exactly what was allocated, so the reader's
  oldest-first allocation inside a group reproduces the demo's allocations;
* currencies: ``Debit``/``Credit`` are in EUR (the book currency). A foreign-currency document also carries
  ``Montantdevise``/``Idevise`` on its 411 line; its EUR amounts use the fixed illustrative rates of
  :data:`EUR_PER_UNIT` (the demo has no exchange rates).

Zero amounts are not written (an FEC has no zero-money lines).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from relance.demo.landing_files import arrow_schema
from relance.sources.amounts import CENT, parse_amount
from relance.sources.fec import FEC_COLUMNS

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
VAT_RATE = Decimal("0.20")
# Illustrative EUR value of one unit of each currency (fixed: the demo has no exchange-rate data).
EUR_PER_UNIT: dict[str, Decimal] = {
    "EUR": Decimal("1"),
    "GBP": Decimal("1.17"),
    "USD": Decimal("0.92"),
    "CHF": Decimal("1.05"),
}
COLUMNS: tuple[str, ...] = (*FEC_COLUMNS, "DateRglt")
CUSTOMER_ACCOUNT = ("411000", "Clients")
REVENUE_ACCOUNT = ("706000", "Prestations de services")
VAT_ACCOUNT = ("445710", "TVA collectée")
BANK_ACCOUNT = ("512000", "Banque")
SALES_JOURNAL = ("VE", "Ventes")
BANK_JOURNAL = ("BQ", "Banque")


def _read(landing_dir: Path, entity: str) -> list[dict]:
    """Rows of one landing file (``<entity>.csv`` or ``.parquet``) as Python values (Decimal, date)."""
    csv_path, parquet_path = landing_dir / f"{entity}.csv", landing_dir / f"{entity}.parquet"
    if parquet_path.is_file():
        table = pq.read_table(parquet_path)
    elif csv_path.is_file():
        schema = arrow_schema(entity, "csv")
        table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=schema))
    else:
        raise FileNotFoundError(f"{landing_dir}: no {entity}.csv or {entity}.parquet")
    return table.to_pylist()


def _fmt_amount(value: Decimal) -> str:
    """FEC amount: decimal comma, two decimals."""
    return f"{value:.2f}".replace(".", ",")


def _fmt_date(value: date | None) -> str:
    """FEC date: YYYYMMDD, empty for none."""
    return value.strftime("%Y%m%d") if value else ""


def _text(value: object) -> str:
    """A text field with the separator and line breaks removed."""
    return " ".join(str(value or "").replace("\t", " ").split())


def to_eur(amount: Decimal, currency: str) -> Decimal:
    """EUR book amount of a document amount, at the illustrative rate."""
    try:
        rate = EUR_PER_UNIT[currency]
    except KeyError as exc:
        raise ValueError(
            f"no illustrative EUR rate for currency {currency!r}; known: {', '.join(EUR_PER_UNIT)}"
        ) from exc
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def lettering_code(n: int, *, partial: bool) -> str:
    """The n-th lettering code (0 -> A, 25 -> Z, 26 -> AA, ...), lower case for partial lettering."""
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters.lower() if partial else letters


@dataclass
class _Entry:
    """One accounting entry before numbering: its journal, date, and lines (dicts of FEC columns)."""

    journal: tuple[str, str]
    entry_date: date
    sort_key: str
    lines: list[dict[str, str]]


def write_fec(landing_dir: Path, out_path: Path) -> Path:
    """Write the demo landing files of ``landing_dir`` as an FEC at ``out_path``; return ``out_path``.

    Reads customers, invoices (and credit notes), payments and payment_allocations. The file is balanced
    (every entry, hence the file, has debit = credit).
    """
    landing_dir, out_path = Path(landing_dir), Path(out_path)
    customers = {r["customer_id"]: r for r in _read(landing_dir, "customers")}
    documents = _read(landing_dir, "invoices")
    payments = _read(landing_dir, "payments") if _exists(landing_dir, "payments") else []
    allocations = _read(landing_dir, "payment_allocations") if _exists(landing_dir, "payment_allocations") else []

    invoices = {d["invoice_id"]: d for d in documents if d["document_type"] == "invoice"}
    credit_notes = [d for d in documents if d["document_type"] == "credit_note"]
    # what settles each invoice: (date, amount) events, to know whether and when it is fully lettered
    events: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    pay_by_id = {p["payment_id"]: p for p in payments}
    for a in allocations:
        if a["invoice_id"] in invoices and a["payment_id"] in pay_by_id and a["allocated_amount"]:
            events[a["invoice_id"]].append((pay_by_id[a["payment_id"]]["payment_date"], a["allocated_amount"]))
    for cn in credit_notes:
        if cn["credited_invoice_id"] in invoices and cn["amount"]:
            events[cn["credited_invoice_id"]].append((cn["issue_date"], -cn["amount"]))

    codes: dict[str, str] = {}
    date_let: dict[str, date | None] = {}
    per_customer: dict[str, int] = defaultdict(int)
    for inv in sorted(invoices.values(), key=lambda d: (d["issue_date"], d["invoice_id"])):
        evs = events.get(inv["invoice_id"])
        if not evs:
            continue
        settled = sum((a for _, a in evs), ZERO) >= inv["amount"]
        n = per_customer[inv["customer_id"]]
        per_customer[inv["customer_id"]] += 1
        codes[inv["invoice_id"]] = lettering_code(n, partial=not settled)
        date_let[inv["invoice_id"]] = max(d for d, _ in evs) if settled else None

    def customer_line(doc_customer: str, currency: str, amount: Decimal, *, debit: bool, **cols: str) -> dict:
        """The 411 line: EUR in Debit/Credit, the document currency in Montantdevise/Idevise when foreign."""
        eur = to_eur(amount, currency)
        cust = customers.get(doc_customer, {})
        line = {
            "CompteNum": CUSTOMER_ACCOUNT[0],
            "CompteLib": CUSTOMER_ACCOUNT[1],
            "CompAuxNum": doc_customer,
            "CompAuxLib": _text(cust.get("customer_name") or doc_customer),
            "Debit": _fmt_amount(eur if debit else ZERO),
            "Credit": _fmt_amount(ZERO if debit else eur),
            **cols,
        }
        if currency != "EUR":
            line["Montantdevise"], line["Idevise"] = _fmt_amount(amount), currency
        return line

    def plain_line(account: tuple[str, str], eur: Decimal, *, debit: bool) -> dict:
        """A counterpart line (revenue, VAT, bank) in EUR."""
        return {
            "CompteNum": account[0],
            "CompteLib": account[1],
            "Debit": _fmt_amount(eur if debit else ZERO),
            "Credit": _fmt_amount(ZERO if debit else eur),
        }

    entries: list[_Entry] = []
    for doc in documents:
        amount: Decimal = doc["amount"]
        if not amount:
            continue
        is_invoice = doc["document_type"] == "invoice"
        target = doc["invoice_id"] if is_invoice else doc["credited_invoice_id"]
        code = codes.get(target or "", "")
        letter_date = date_let.get(target or "") if code else None
        label = f"{'Facture' if is_invoice else 'Avoir'} {doc['invoice_id']}"
        common = {"PieceRef": doc["invoice_id"], "PieceDate": _fmt_date(doc["issue_date"]), "EcritureLib": label}
        eur = to_eur(abs(amount), doc["currency"])
        net = (eur / (1 + VAT_RATE)).quantize(CENT, rounding=ROUND_HALF_UP)
        lines = [
            {
                **customer_line(
                    doc["customer_id"],
                    doc["currency"],
                    abs(amount),
                    debit=amount > 0,
                    EcritureLet=code,
                    DateLet=_fmt_date(letter_date),
                    DateRglt=_fmt_date(doc["due_date"]),
                ),
                **common,
            },
            {**plain_line(REVENUE_ACCOUNT, net, debit=amount < 0), **common},
            {**plain_line(VAT_ACCOUNT, eur - net, debit=amount < 0), **common},
        ]
        entries.append(_Entry(SALES_JOURNAL, doc["issue_date"], doc["invoice_id"], lines))

    allocs_by_payment: dict[str, list[dict]] = defaultdict(list)
    for a in allocations:
        allocs_by_payment[a["payment_id"]].append(a)
    for p in payments:
        amount = p["amount"]
        if not amount:
            continue
        common = {
            "PieceRef": p["payment_id"],
            "PieceDate": _fmt_date(p["payment_date"]),
            "EcritureLib": f"Règlement {p['payment_id']}",
        }
        lines = []
        allocated = ZERO
        for a in sorted(allocs_by_payment.get(p["payment_id"], []), key=lambda a: a["invoice_id"]):
            if not a["allocated_amount"]:
                continue
            allocated += a["allocated_amount"]
            code = codes.get(a["invoice_id"], "")
            lines.append(
                {
                    **customer_line(
                        p["customer_id"],
                        p["currency"],
                        a["allocated_amount"],
                        debit=False,
                        EcritureLet=code,
                        DateLet=_fmt_date(date_let.get(a["invoice_id"]) if code else None),
                    ),
                    **common,
                }
            )
        if amount - allocated > 0:  # money on account: an unlettered line
            lines.append({**customer_line(p["customer_id"], p["currency"], amount - allocated, debit=False), **common})
        bank = sum((parse_amount(ln["Credit"]) for ln in lines), ZERO)
        lines.insert(0, {**plain_line(BANK_ACCOUNT, bank, debit=True), **common})
        entries.append(_Entry(BANK_JOURNAL, p["payment_date"], p["payment_id"], lines))

    entries.sort(key=lambda e: (e.entry_date, e.journal[0], e.sort_key))
    numbers: dict[str, int] = defaultdict(int)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n_lines = 0
    with out_path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        for entry in entries:
            code, label = entry.journal
            numbers[code] += 1
            head = {
                "JournalCode": code,
                "JournalLib": label,
                "EcritureNum": f"{code}{numbers[code]:06d}",
                "EcritureDate": _fmt_date(entry.entry_date),
                "ValidDate": _fmt_date(entry.entry_date),
            }
            for line in entry.lines:
                row = {**head, **line}
                fh.write("\t".join(row.get(c, "") for c in COLUMNS) + "\n")
                n_lines += 1
    log.info("wrote %s: %d entries, %d lines", out_path, len(entries), n_lines)
    return out_path


def _exists(landing_dir: Path, entity: str) -> bool:
    return (landing_dir / f"{entity}.csv").is_file() or (landing_dir / f"{entity}.parquet").is_file()
