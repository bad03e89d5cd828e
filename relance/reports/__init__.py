"""Reports for finance: the aged balance, DSO and the exposure at risk, as CSV and one self-contained HTML."""

from relance.reports.finance import FinanceReport, write_finance_report

__all__ = ["FinanceReport", "write_finance_report"]
