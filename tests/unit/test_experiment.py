"""The holdout effect: Newcombe's interval against the paper's worked examples, and the per-channel split."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from relance.reminders.experiment import difference, holdout_effect, wilson


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((56, 70, 48, 80), (0.2, 0.0524, 0.3339)),  # Newcombe (1998), Table II, example (a), method 10
        ((9, 10, 3, 10), (0.6, 0.1705, 0.8090)),  # example (b)
        ((5, 56, 0, 29), (0.0893, -0.0381, 0.1926)),  # example (c)
    ],
)
def test_newcombe_hybrid_score_interval_matches_the_paper(counts, expected) -> None:
    d = difference(*counts)
    assert (d.effect, d.low, d.high) == pytest.approx(expected, abs=5e-4)


def test_wilson_interval_stays_in_range_at_the_edges() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_holdout_effect_overall_and_by_first_channel() -> None:
    outcomes = pd.DataFrame(
        {
            "arm": ["holdout"] * 40 + ["treatment"] * 100,
            "channel": [None] * 40 + ["email"] * 60 + ["call"] * 30 + [None] * 10,
            "is_paid": [True] * 8
            + [False] * 32
            + [True] * 24
            + [False] * 36
            + [True] * 21
            + [False] * 9
            + [False] * 10,
        }
    )
    effect = holdout_effect(outcomes).set_index("group")
    assert list(effect.index) == ["all (intention to treat)", "call", "email", "no message"]
    overall = effect.loc["all (intention to treat)"]
    assert (overall.n_treated, overall.paid_treated, overall.n_holdout, overall.paid_holdout) == (100, 45, 40, 8)
    assert overall.effect == pytest.approx(0.45 - 0.2)
    assert overall.ci_low > 0, "a real effect at these counts is significant"
    assert effect.loc["call", "rate_treated"] == pytest.approx(0.7)
    assert effect.loc["no message", "effect"] == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="is_paid"):
        holdout_effect(outcomes.drop(columns="is_paid"))
