"""relance: collect unpaid invoices with data and ML instead of mechanical dunning.

The domain library. Nothing in this package imports Prefect: flows/ orchestrates it.
"""

__version__ = "0.1.0"
