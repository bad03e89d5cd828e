"""Benchmark the reminder engine's daily decision and the contact rules, on a synthetic worklist.

    .venv/bin/python bench/bench_engine.py                                   # 20,000 customers, 100,000 invoices
    .venv/bin/python bench/bench_engine.py --customers 200000 --invoices 1000000

Prints, per size: the seconds of :func:`relance.reminders.engine.decide` (default scenarios, no response model),
invoices and customers per second, the messages and decisions it made, the seconds of one
:func:`relance.reminders.rules.check_send` per message against a 5-contact history, and the peak memory (max RSS of
this process). Not a test: nothing passes or fails on time. The worklist is random but shaped like the demo's
(customers with 1-20 open invoices, days overdue from -30 to 120, some disputed, some promises and opt-outs).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relance.reminders.engine import EngineConfig, decide  # noqa: E402
from relance.reminders.rules import Contact, ContactRules, CustomerFacts, check_send  # noqa: E402
from relance.reminders.scenarios import load_default_scenarios  # noqa: E402

AS_OF = date(2026, 10, 30)


def worklist(customers: int, invoices: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cust = np.sort(rng.integers(0, customers, invoices))
    b2b = rng.random(customers) < 0.85
    d = rng.integers(-30, 121, invoices)
    ids = np.array([f"C{i:07d}" for i in range(customers)], dtype=object)
    frame = pd.DataFrame(
        {
            "invoice_id": [f"F{i:08d}" for i in range(invoices)],
            "customer_id": ids[cust],
            "customer_name": ids[cust],
            "customer_type": np.where(b2b[cust], "B2B", "B2C"),
            "email": [f"{c.lower()}@example.com" for c in ids[cust]],
            "phone": "+33639981234",
            "currency": "EUR",
            "open_amount": np.round(rng.lognormal(6.5, 1.0, invoices), 2),
            "amount": 0.0,
            "due_date": [AS_OF - timedelta(days=int(x)) for x in d],
            "days_overdue": d,
            "is_disputed": rng.random(invoices) < 0.02,
            "p_late": rng.random(invoices),
            "sector_section": rng.choice(["C", "F", "G", "M"], invoices),
            "country_code": "FR",
            "has_open_procedure": False,
        }
    )
    frame["amount"] = frame["open_amount"]
    some = rng.choice(customers, customers // 10, replace=False)
    contacts = pd.DataFrame(
        {
            "customer_id": ids[some],
            "promise_status": rng.choice(["active", "broken", "kept", None], len(some)),
            "promise_date": [AS_OF - timedelta(days=int(x)) for x in rng.integers(-10, 20, len(some))],
            "last_contact_at": [
                pd.Timestamp(AS_OF) - pd.Timedelta(days=int(x)) for x in rng.integers(1, 30, len(some))
            ],
            "suppressed_channels": rng.choice([None, None, "email", "*"], len(some)),
        }
    )
    return frame, contacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    args = parser.parse_args(argv)

    wl, contacts = worklist(args.customers, args.invoices)
    scenarios = load_default_scenarios()
    config = EngineConfig(enabled_channels=("email", "sms", "letter", "call"))
    t0 = time.perf_counter()
    result = decide(wl, contacts, as_of_date=AS_OF, scenarios=scenarios, config=config)
    seconds = time.perf_counter() - t0
    print(
        f"decide: {args.invoices:,} invoices, {args.customers:,} customers in {seconds:.2f} s "
        f"({args.invoices / seconds:,.0f} invoices/s, {args.customers / seconds:,.0f} customers/s); "
        f"{len(result.plan):,} messages; decisions {result.counts}"
    )

    rules = ContactRules()
    now = datetime(2026, 10, 30, 9, 0, tzinfo=UTC)
    history = [Contact("C", "email", now - timedelta(days=k * 6 + 3)) for k in range(5)]
    facts = CustomerFacts("C", "B2B", "FR", 500.0)
    n = max(len(result.plan), 1000)
    t0 = time.perf_counter()
    for _ in range(n):
        check_send("email", now, facts, history, rules)
    per = (time.perf_counter() - t0) / n
    print(f"check_send: {per * 1e6:,.0f} us per message ({1 / per:,.0f} messages/s), 5-contact history")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
