"""Read a French FEC (Fichier des Écritures Comptables) into the canonical raw entities.

The FEC is the legal general-ledger export (article A.47 A-1 of the Livre des procédures fiscales): one line
per accounting line, 18 columns (JournalCode, JournalLib, EcritureNum, EcritureDate, CompteNum, CompteLib,
CompAuxNum, CompAuxLib, PieceRef, PieceDate, EcritureLib, Debit, Credit, EcritureLet, DateLet, ValidDate,
Montantdevise, Idevise). Every accounting package can write it, which makes it the one receivables source
every French company has. It holds no customer master data, no due dates and no payment allocations as
such: this module derives them, as documented below.

Reading what real exporters write
---------------------------------
* Encoding: UTF-8 (with or without BOM) is tried first; a file that is not valid UTF-8 is decoded as CP1252,
  and if that fails (bytes CP1252 leaves undefined) as ISO-8859-15, which maps every byte. No file crashes
  the reader and no accented letter turns into an error.
* Separator: tab, pipe (or semicolon) is detected from the header line: the one that yields the FEC columns.
  Header names are matched case-insensitively (``CompteLIB``, ``MontantDevise``); extra columns (DateRglt,
  ModeRglt, NatOp, IdClient...) are kept available and otherwise ignored. The variant layout with
  ``Montant`` + ``Sens`` instead of ``Debit`` + ``Credit`` is accepted.
* Line ends: LF, CRLF, CR and CR CR LF all end one record. Blank lines are skipped. Line numbers in
  rejects count records the way they appear in the file, header = line 1.
* Fields are trimmed (fixed-width exporters pad with spaces) and a trailing separator (one extra empty
  field on every line) is tolerated; any other field-count mismatch is a :class:`~relance.sources.base.Reject`.
* Amounts: decimal comma or point, optional sign, zero padding (``+000001107,13``, ``0000000069,60``),
  whole numbers (``2592``), thousands separators; parsed to :class:`~decimal.Decimal` (exact cents, never
  float). Dates: ``YYYYMMDD`` (also ``YYYY-MM-DD`` and ``DD/MM/YYYY``).
* A file whose header lacks mandatory FEC columns raises :class:`~relance.sources.base.SourceError` naming
  them. A customer line whose date or amount does not parse becomes a ``Reject`` (line number and reason);
  lines of other accounts are not inspected beyond the field count.

Derivation
----------
* Customer lines are the lines whose ``CompteNum`` starts with ``customer_accounts`` (``411``). Other lines
  (revenue, VAT, bank...) are read but produce nothing.
* Customer: ``CompAuxNum``/``CompAuxLib`` when ``CompAuxNum`` is filled (auxiliary ledger under a collective
  411 account), otherwise the 411 sub-account itself, ``CompteNum``/``CompteLib`` (one 411 account per
  customer). Its name is the most frequent label on its lines. Nothing else is known (nulls).
* Each customer line is netted (``Debit - Credit``); zero lines are skipped. A net debit is an invoice (in an
  opening-balance journal: an open item carried from an earlier year). A net credit is a credit note
  (``document_type = 'credit_note'``, negative amount) when the journal is a sales journal (code V, VE, VT,
  VEN, VTE or a label containing "vente"), otherwise part of a payment.
* Payment: the credit lines of one customer in one accounting entry (same journal, ``EcritureNum``,
  ``EcritureDate`` and ``PieceRef``) are one payment (a receipt split per invoice is one payment, not
  several; where an exporter writes ``EcritureNum`` 0 everywhere, same-day lines of one ``PieceRef`` merge).
  ``payment_date`` is the entry's ``EcritureDate``, the day the money was booked as received; ``DateLet`` is
  when the accountant matched it and is not used. Payment method is unknown (null).
* Lettering: the lines of one customer with the same ``EcritureLet`` (trimmed, non-empty, case-sensitive:
  Sage writes lower case for partial lettering) are matched. In each group the credits (payments and
  credit notes, oldest first) are allocated to the debits (invoices, oldest first) until one side runs out:
  a group that does not balance (partial lettering) leaves the remainder of its invoices open, or the
  remainder of its credits unallocated. A payment yields one ``payment_allocations`` row per invoice it
  pays. A credit note is a row of ``invoices`` that credits exactly one invoice (``credited_invoice_id``);
  when lettering spreads it over several invoices, or part of it stays unallocated, it is written as one
  row per part: the first keeps the credit note's id, the others get ``~2``, ``~3``... (the amounts sum to
  the credit note). Unlettered credits stay unallocated (money on account).
  Hence, for every customer: open invoices - unallocated credits = sum of debits - sum of credits on its
  411 lines (its ledger balance), to the cent.
* Dates: ``issue_date`` is ``PieceDate`` (the document's date) when it is a valid date not after
  ``EcritureDate``, otherwise ``EcritureDate``. In opening-balance journals (AN, ANO, RAN, or a label with
  "nouveau"/"ouverture") ``PieceDate`` keeps the original date of the carried item, which is what aging
  needs; the same rule gives such a carried credit its original ``payment_date``. The FEC has no due date:
  ``due_date`` is the extra column ``DateRglt`` when present, valid and not before ``issue_date``, else ``issue_date +
  default_terms_days`` (30); ``payment_terms_days`` is ``due_date - issue_date``.
* Currency: EUR (the book currency of ``Debit``/``Credit``), unless ``Idevise`` names another currency and
  ``Montantdevise`` holds an amount: then the amount is ``|Montantdevise|`` in ``Idevise``.
* Ids are deterministic and survive a re-export of the same books with more lines (they never use the line
  number): the first document line carrying a ``PieceRef`` keeps it as its id, ranked by the line's own fields
  only (invoices before credit notes, then journal, ``EcritureNum`` as a number, dates, content), so a document
  entered later never takes an existing id; every other line sharing that reference gets ``FEC-`` + a content
  hash. Payments follow the same rule (``FEC-P`` + hash). :mod:`~relance.sources.fec.ids` states the rule and
  its one limit. Each FEC file is a full snapshot of its fiscal year (scoped to its file name): what a
  re-export no longer holds, such as a payment re-lettered to another invoice, is retired by the loader.

One module per job: :mod:`~relance.sources.fec.layout` (the legal columns, separator and header),
:mod:`~relance.sources.fec.lines` (records, fields, one customer line parsed), :mod:`~relance.sources.fec.journals`
(sales and opening journals), :mod:`~relance.sources.fec.ids` (deterministic ids),
:mod:`~relance.sources.fec.lettering` (allocation inside lettering groups), :mod:`~relance.sources.fec.entities`
(the four tables) and :mod:`~relance.sources.fec.read` (:func:`read_fec`). Decoding is
:func:`relance.sources.encoding.decode_bytes`, amounts :func:`relance.sources.amounts.parse_amount`, shared with
the tabular reader.
"""

from relance.sources.amounts import parse_amount
from relance.sources.fec.layout import FEC_COLUMNS, FecLayout, detect_layout
from relance.sources.fec.lines import parse_date
from relance.sources.fec.read import DEFAULT_TERMS_DAYS, read_fec

__all__ = ["DEFAULT_TERMS_DAYS", "FEC_COLUMNS", "FecLayout", "detect_layout", "parse_amount", "parse_date", "read_fec"]
