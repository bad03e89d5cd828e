"""Receivables sources: each adapter turns what a user has (a ledger file, an FEC, an ERP database) into
extracts of the canonical raw entities (``relance.raw_schema``); ``relance.ingest.load_extracts`` loads them."""
