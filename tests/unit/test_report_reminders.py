"""The finance report's "Relances" section: today's decisions, messages by scenario, channel and currency, blocked
sends, and the holdout effect (or why it is not measured yet)."""

from __future__ import annotations

import pandas as pd

from relance.reminders.experiment import holdout_effect
from relance.reports.finance import reminder_section


def test_messages_are_summed_per_currency_and_labelled_in_french() -> None:
    decisions = pd.DataFrame(
        {"decision": ["send", "send", "pause", "wait"], "rule": [None, None, "promise_pause", None]}
    )
    planned = pd.DataFrame(
        {
            "scenario": ["b2b", "b2b", "b2b"],
            "channel": ["letter", "letter", "email"],
            "tone": ["formal_notice", "formal_notice", "firm"],
            "currency": ["EUR", "GBP", "EUR"],
            "open_amount": [100.0, 50.0, 10.0],
            "invoice_ids": ['["A", "B"]', '["C"]', None],
        }
    )
    blocks = pd.DataFrame({"rule": ["min_gap", "min_gap", "quiet_hours"]})
    section = reminder_section(decisions, planned, blocks, None)
    letters = [m for m in section["messages"] if m["channel"] == "courrier"]
    assert [(m["tone"], m["n"], m["invoices"]) for m in letters] == [
        ("mise en demeure", 1, 2),
        ("mise en demeure", 1, 1),
    ]
    assert {m["amount"][-1] for m in letters} == {"€", "£"}, "one row per currency, never a sum across them"
    assert {"decision": "en pause (promesse, litige)", "rule": "promise_pause", "n": 1} in section["decisions"]
    assert section["blocks"] == [{"rule": "min_gap", "n": 2}, {"rule": "quiet_hours", "n": 1}]
    assert section["effect"] == [] and "Pas encore de recul" in section["effect_note"]


def test_the_effect_rows_carry_counts_effect_and_interval() -> None:
    outcomes = pd.DataFrame(
        {"arm": ["holdout"] * 10 + ["treatment"] * 10, "channel": [None] * 10 + ["email"] * 10,
         "is_paid": [True] * 2 + [False] * 8 + [True] * 7 + [False] * 3}
    )  # fmt: skip
    section = reminder_section(None, None, None, holdout_effect(outcomes))
    first = section["effect"][0]
    assert first["group"] == "toutes relances (intention de traiter)"
    assert (first["treated"], first["holdout"], first["effect"]) == ("7/10", "2/10", "+50,0 pts")
    assert first["ci"].startswith("[+") and section["effect_note"] == ""
