"""`relance evaluate`: the rolling-monthly-origin backtest, end to end.

* the headline: the public IBM sample through the CLI, as the README runs it (one test: it imports, builds a
  daily as-of grid with dbt and fits twelve monthly models, a few minutes on a busy machine);
* a tiny generated ledger with a profile of its own (one CSV, an ``evaluation.exclude`` rule): the monthly origin
  never trains on a label observed on or after it, even for an invoice paid before it; the exclusion is applied to
  the test rows only and counted; the error cases exit non-zero with a clear message.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows.import_receivables import import_source
from models import backtest as bt
from models.contract import DAYS_LATE, PREDICTION, QUANTILE_COLUMNS, TARGET
from relance import dbt
from relance.settings import Settings
from tests.conftest import DbtInvoke, require

pytestmark = pytest.mark.integration

RELANCE = Path(sys.executable).parent / "relance"
METRIC_KEYS = ("auc", "brier", "calibration_error", "mae_days_late", "pinball_mean", "coverage_p10_p90")


def _env() -> dict[str, str]:
    """A user's shell: no relance, Prefect or MLflow settings; data under the working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    return env | {"COLUMNS": "200", "MLFLOW_DISABLE_TELEMETRY": "true", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def run_cli(cwd: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it."""
    return subprocess.run(
        [str(RELANCE), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def run_cli_all(cwd: Path, *argvs: list[str], timeout: int = 600) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands side by side (each is seconds of imports): their results in order."""
    procs = [
        subprocess.Popen([str(RELANCE), *argv], cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for argv in argvs
    ]  # fmt: skip
    done = []
    for argv, proc in zip(argvs, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return done


# --- the IBM sample -----------------------------------------------------------------------------------------------


def test_ibm_sample_backtest_through_the_cli(shared_dir: Path, tmp_path: Path) -> None:
    ibm = shared_dir / "data" / "ibm_accounts_receivable.csv"
    require(ibm.is_file(), f"IBM accounts-receivable sample not found at {ibm}")
    out = tmp_path / "ibm.json"
    done = run_cli(
        tmp_path, "evaluate", str(ibm), "--profile", "ibm_ar", "--from", "2013-01-01", "--to", "2013-12-31",
        "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the table: relance first, then every baseline, the columns
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["method", "auc"])
    assert lines[header].split() == ["method", *METRIC_KEYS]
    rows = [line.split()[0] for line in lines[header + 2 : header + 2 + 1 + len(bt.BASELINES)]]
    assert rows == ["relance", *bt.BASELINES]
    assert "95 % interval by customer bootstrap" in done.stdout
    assert "disputed after issue" in done.stdout

    result = json.loads(out.read_text())
    assert {"target", "from", "to", "n_test", "metrics", "baselines", "months", "ci", "mlflow_run_id"} <= set(result)
    assert result["target"] == "late_any" and (result["from"], result["to"]) == ("2013-01-01", "2013-12-31")
    assert [m["month"] for m in result["months"]] == [f"2013-{m:02d}" for m in range(1, 13)]
    assert not any(m["skipped"] for m in result["months"])
    # 1,189 invoices issued in 2013; the disputed ones are left out, as are the few settled on their issue date
    assert result["dropped"]["issued"] == 1189
    (exclusion,) = result["exclusions"]
    assert exclusion["applied"] and 250 < exclusion["test_rows"] < 300
    assert result["n_test"] == 1189 - exclusion["test_rows"] - result["dropped"]["not_open_at_issue"]
    relance = result["metrics"]
    assert set(METRIC_KEYS) <= set(relance)
    assert 0.8 < relance["auc"] < 1 and 0 < relance["mae_days_late"] < 3
    assert set(result["baselines"]) == set(bt.BASELINES)
    assert result["baselines"]["always_on_time"]["auc"] == 0.5
    assert (
        "auc" in result["baselines"]["customer_late_rate"] and "mae_days_late" in result["baselines"]["customer_median"]
    )
    low, high = result["ci"]["auc"]
    assert low <= relance["auc"] <= high
    assert (tmp_path / "data" / "mlflow" / "mlflow.db").is_file()
    assert result["mlflow_run_id"] in done.stdout


# --- a tiny generated ledger --------------------------------------------------------------------------------------

PROFILE = """
name: tiny_ledger
description: A generated one-file ledger (tests/integration/test_evaluate.py).
full_snapshot: true
reader: {format: csv, delimiter: ",", encoding: utf-8, decimal: ".", header_row: 1}
ignore_columns: [Flag]
evaluation:
  exclude:
    - where: "Flag = 'disputed'"
      reason: disputed after issue
entities:
  customers:
    file: "*.csv"
    required: true
    distinct: true
    columns: {customer_id: Customer, customer_name: Customer, customer_type: "'B2B'", currency: "'EUR'"}
  invoices:
    file: "*.csv"
    required: true
    columns:
      invoice_id: Invoice
      customer_id: Customer
      document_type: "'invoice'"
      issue_date: Issued
      due_date: Due
      amount: Amount
      currency: "'EUR'"
      payment_terms_days: 30
      is_end_of_month_terms: false
  payments:
    file: "*.csv"
    where: "nullif(trim(Settled), '') IS NOT NULL"
    columns:
      payment_id: "'PAY-' || Invoice"
      customer_id: Customer
      payment_date: Settled
      amount: Amount
      currency: "'EUR'"
  payment_allocations:
    file: "*.csv"
    where: "nullif(trim(Settled), '') IS NOT NULL"
    columns: {payment_id: "'PAY-' || Invoice", invoice_id: Invoice, allocated_amount: Amount}
"""
# paid EARLY, before the October origin, but due after it: its label (late_any) is observed on 2023-10-21
PAID_EARLY = "EARLY-1"
# due before the October origin (label known), paid after it: trains in October without its days late
PAID_LATER = "LATER-1"


def tiny_ledger(root: Path, *, seed: int = 7) -> tuple[Path, Path]:
    """One CSV of ~450 invoices of 12 customers issued over 2023 (each customer late with its own probability),
    a few flagged disputed, plus the two constructed invoices; and its profile."""
    rng = random.Random(seed)
    rows = []
    n = 0
    for day in range(0, 365, 1):
        issued = date(2023, 1, 1) + timedelta(days=day)
        for _ in range(rng.choice((0, 1, 1, 2))):
            n += 1
            customer = rng.randrange(12)
            due = issued + timedelta(days=30)
            late = rng.random() < 0.1 + 0.07 * customer
            settled = due + timedelta(days=rng.randint(1, 25) if late else -rng.randint(0, 20))
            flag = "disputed" if rng.random() < 0.08 else ""
            rows.append((f"C{customer:02d}", f"INV-{n:05d}", issued, due, 100 + customer * 10 + n % 7, settled, flag))
    rows.append(("C01", PAID_EARLY, date(2023, 9, 20), date(2023, 10, 20), 250, date(2023, 9, 25), ""))
    rows.append(("C11", PAID_LATER, date(2023, 8, 1), date(2023, 8, 31), 250, date(2023, 10, 15), ""))
    root.mkdir(parents=True, exist_ok=True)
    csv = root / "ledger.csv"
    lines = ["Customer,Invoice,Issued,Due,Amount,Settled,Flag"]
    lines += [f"{c},{i},{d1},{d2},{a}.00,{s},{f}" for c, i, d1, d2, a, s, f in rows]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    profile = root / "tiny_ledger.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    return csv, profile


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_ledger(tmp_path_factory.mktemp("tiny-ledger"))


@pytest.fixture(scope="module")
def tiny_frame(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, dbt_manifest) -> pd.DataFrame:
    """The tiny ledger imported and built as the backtest builds it (daily grid, late_any)."""
    from dbt.cli.main import dbtRunner

    csv, profile = tiny
    data = tmp_path_factory.mktemp("tiny-build")
    settings = bt.backtest_settings(Settings(data_dir=data), data, target_kind="late_over", target_days=0)
    with duckdb.connect(str(settings.warehouse)) as con:
        report = import_source(con, csv, profile=str(profile), gx_dir=None, flow_run_id=None, data_docs=False)
    assert report.success, report.validation
    invoke: DbtInvoke = lambda args: dbtRunner(manifest=dbt_manifest.deepcopy()).invoke(args)  # noqa: E731
    dbt.run_dbt(settings, dbt.backtest_build_args(settings, date(2024, 2, 1)), invoke=invoke)
    with duckdb.connect(str(settings.warehouse)) as con:
        return bt.load_backtest_frame(con)


def test_the_origin_never_trains_on_a_label_observed_after_it(tiny_frame: pd.DataFrame) -> None:
    october = bt.training_rows(tiny_frame, date(2023, 10, 1))
    assert PAID_EARLY not in set(october["invoice_id"])  # paid on 09-25, but its label is known on 10-21
    assert (october["label_observed_date"] < pd.Timestamp("2023-10-01")).all()
    assert (october["as_of_date"] == october["issue_date"]).all()
    later = october.set_index("invoice_id").loc[PAID_LATER]
    assert later[TARGET] == 1 and pd.isna(later[DAYS_LATE])  # late is known, how late is not (paid 10-15)
    november = bt.training_rows(tiny_frame, date(2023, 11, 1)).set_index("invoice_id")
    assert november.loc[PAID_EARLY, TARGET] == 0 and november.loc[PAID_EARLY, DAYS_LATE] == -25
    assert november.loc[PAID_LATER, DAYS_LATE] == 45

    seen: dict[str, set[str]] = {}

    def recording_fit(train: pd.DataFrame):
        seen[str(train["label_observed_date"].max().date())] = set(train["invoice_id"])

        def predict(test: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({PREDICTION: 0.5, **dict.fromkeys(QUANTILE_COLUMNS, 0.0)}, index=test.index)

        return predict

    _, logs = bt.run_months(tiny_frame, date(2023, 10, 1), date(2023, 11, 30), fit=recording_fit)
    assert [log.origin for log in logs] == [date(2023, 10, 1), date(2023, 11, 1)]
    (oct_latest, oct_ids), (_, nov_ids) = sorted(seen.items())
    assert oct_latest < "2023-10-01" and PAID_EARLY not in oct_ids and PAID_EARLY in nov_ids


def test_baseline_history_is_as_of_the_row(tiny_frame: pd.DataFrame) -> None:
    """The baselines' history counts the customer's invoices settled strictly before the row's date: the same
    count as the feature cust_settled_invoice_count, built by dbt."""
    assert (tiny_frame["hist_settled_count"] == tiny_frame["cust_settled_invoice_count"]).all()
    first = tiny_frame.sort_values("as_of_date").groupby("customer_id").head(1)
    assert first["hist_mean_days_late"].isna().all()


def test_tiny_ledger_through_the_cli_with_exclusions(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    csv, profile = tiny
    out = tmp_path / "tiny.json"
    data = tmp_path / "somewhere"
    done = run_cli(
        tmp_path, "evaluate", str(csv), "--profile", str(profile), "--from", "2023-10-01", "--to", "2023-12-31",
        "--json", str(out), "--data-dir", str(data),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    flagged = set(
        pd.read_csv(csv, dtype=str).query("Flag == 'disputed' and Issued >= '2023-10-01'")["Invoice"].tolist()
    )
    (exclusion,) = result["exclusions"]
    assert exclusion["reason"] == "disputed after issue" and exclusion["test_rows"] == len(flagged) > 0
    assert f"excluded: {len(flagged)} test row(s): disputed after issue" in done.stdout
    assert [m["month"] for m in result["months"]] == ["2023-10", "2023-11", "2023-12"]
    assert sum(m["n_test"] for m in result["months"]) == result["n_test"]
    assert result["n_test"] + len(flagged) + result["dropped"]["not_open_at_issue"] == result["dropped"]["issued"]
    assert (data / "mlflow" / "mlflow.db").is_file()  # --data-dir holds the MLflow store and the scratch build
    assert any((data / "backtest").glob("*/warehouse.duckdb"))


def test_error_cases_exit_non_zero_with_a_clear_message(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    csv, profile = tiny
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\x01\x02 not a ledger\n")
    cases = {
        "unknown profile": (["--profile", "no_such_profile"], "unknown profile 'no_such_profile'"),
        "missing file": ([str(tmp_path / "missing.csv"), "--profile", str(profile)], "does not exist"),
        "unreadable file": ([str(garbage), "--profile", str(profile)], "cannot import"),
        "from after to": (["--profile", str(profile), "--from", "2023-12-01", "--to", "2023-01-01"], "is after"),
        "no invoice in range": (
            ["--profile", str(profile), "--from", "2030-01-01", "--to", "2030-12-31"],
            "no invoice",
        ),
        "bad target": (["--profile", str(profile), "--target", "late"], "unknown target"),
    }
    argvs = []
    for args, _ in cases.values():
        argv = ["evaluate", *([] if args[0].endswith(".csv") else [str(csv)]), *args]
        if "--from" not in argv:
            argv += ["--from", "2023-10-01", "--to", "2023-12-31"]
        argvs.append(argv)
    for (name, (_, message)), done in zip(cases.items(), run_cli_all(tmp_path, *argvs), strict=True):
        text = " ".join((done.stdout + done.stderr).split())
        assert done.returncode != 0, name
        assert "Traceback" not in text, f"{name}: {text[-2000:]}"
        assert message in text, f"{name}: {text[-2000:]}"
