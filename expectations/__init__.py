"""Great Expectations (GX Core 1.x) suites as code and the batch validation runner. No Prefect here."""
