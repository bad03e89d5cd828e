"""Reports for finance: the daily report (aged balance, DSO, exposure at risk, as CSV and one self-contained HTML,
:mod:`relance.reports.finance`) and the finance outputs sent on a schedule, the daily flash and the weekly report
in French and English (HTML email with charts, XLSX workbook: :mod:`relance.reports.finance_outputs`)."""

from relance.reports.finance import FinanceReport, write_finance_report

__all__ = ["FinanceReport", "write_finance_report"]
