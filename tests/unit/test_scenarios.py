"""Reminder scenarios as YAML: the default set is valid, and every error names the file, the line and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relance.cli import app
from relance.reminders.scenarios import (
    Band,
    Conditions,
    ScenarioError,
    load_default_scenarios,
    load_scenarios,
    parse_scenarios,
)

MINIMAL = """\
version: 1
scenarios:
  - name: everyone
    steps:
      - {name: first, day: 7, channels: [email], tone: cordial}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenarios(textwrap.dedent(text), "s.yaml")
    return info.value.problems


def test_the_default_set_is_valid_ordered_by_priority_and_ends_with_a_catch_all() -> None:
    scenarios = load_default_scenarios()
    assert scenarios.names[0] == "b2b_key_accounts"  # priority 30 first
    assert scenarios.scenarios[-1].is_catch_all
    for scenario in scenarios.scenarios:
        days = [s.day for s in scenario.steps]
        assert days == sorted(days)


def test_the_first_matching_scenario_wins() -> None:
    scenarios = load_default_scenarios()
    b2b = {"customer_type": "B2B", "sector_section": "C", "total_due": 900.0}
    assert scenarios.select(b2b).name == "b2b_standard"
    assert scenarios.select({**b2b, "sector_section": "F"}).name == "b2b_construction"
    assert scenarios.select({**b2b, "sector_section": "F", "total_due": 9000.0}).name == "b2b_key_accounts"
    assert scenarios.select({"customer_type": "B2C", "total_due": 90.0}).name == "consumers"
    assert scenarios.select({"customer_type": None}).name == "default"


def test_an_unknown_channel_and_tone_are_named_with_their_lines() -> None:
    problems = _problems(
        """\
        version: 1
        scenarios:
          - name: a
            steps:
              - {name: x, day: 3, channels: [fax], tone: cordial}
              - name: y
                day: 9
                channels: [email]
                tone: rude
        """
    )
    assert any(p.startswith("s.yaml:5: scenarios[0].steps[0].channels[0]:") for p in problems), problems
    assert any(p.startswith("s.yaml:9: scenarios[0].steps[1].tone:") for p in problems), problems


def test_steps_out_of_order_a_typo_in_a_key_and_a_missing_catch_all_are_errors() -> None:
    out_of_order = _problems(MINIMAL + "      - {name: second, day: 3, channels: [email], tone: firm}\n")
    assert out_of_order == [
        "s.yaml:4: scenarios[0].steps: Value error, steps must be in strictly increasing day order, got days [7, 3]"
    ]
    typo = _problems(MINIMAL.replace("    steps:", "    holdout_fration: 0.1\n    steps:"))
    assert typo[0].startswith("s.yaml:4: scenarios[0].holdout_fration: Extra inputs are not permitted"), typo
    no_catch_all = _problems(MINIMAL.replace("    steps:", "    when: {customer_type: [B2B]}\n    steps:"))
    assert "no catch-all scenario" in no_catch_all[0]


def test_bad_values_inside_conditions_and_bands() -> None:
    problems = _problems(
        MINIMAL
        + """\
  - name: big
    when:
      total_due: {min: 5000, max: 10}
      country: []
    steps:
      - {name: first, day: 7, channels: [email, email], tone: cordial}
"""
    )
    text = "\n".join(problems)
    assert "s.yaml:8: scenarios[1].when.total_due: Value error, min (5000.0) is above max (10.0)" in text
    assert "s.yaml:9: scenarios[1].when.country: Value error, an empty list matches nobody" in text
    assert "scenarios[1].steps[0].channels: Value error, channels listed twice" in text


def test_invalid_yaml_and_an_empty_file_say_where(tmp_path: Path) -> None:
    assert _problems("version: 1\nscenarios: [\n")[0].startswith("s.yaml:3: not valid YAML")
    assert _problems("") == ["s.yaml:1: the file is empty"]
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenarios(tmp_path / "missing.yaml")


def test_conditions_match_lists_case_insensitively_and_bands_inclusively() -> None:
    when = Conditions(customer_type=["B2B"], country=["fr"], total_due=Band(min=100, max=200), p_late=Band(min=0.5))
    facts = {"customer_type": "B2B", "country_code": "FR", "total_due": 100.0, "p_late": 0.5}
    assert when.matches(facts)
    assert when.matches({**facts, "total_due": 200.0})
    assert not when.matches({**facts, "total_due": 200.01})
    assert not when.matches({**facts, "country_code": "GB"})
    assert not when.matches({**facts, "p_late": None}), "an unknown value does not satisfy a constrained band"
    assert Conditions().matches({}), "no condition: everyone"


def test_policy_check_command_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MINIMAL)
    bad.write_text(MINIMAL.replace("tone: cordial", "tone: shouting"))

    runner = CliRunner()

    def run(path: Path):
        return runner.invoke(app, ["policy", "check", str(path)], env={"COLUMNS": "200"})

    ok = run(good)
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.stdout
    ko = run(bad)
    assert ko.exit_code == 1
    assert f"{bad}:5: scenarios[0].steps[0].tone" in ko.stdout.replace("\n", "")
