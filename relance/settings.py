"""One typed configuration object, built once at the entry point and passed down.

Every setting can be overridden by an environment variable with the ``RELANCE_`` prefix
(``RELANCE_DATA_DIR=/srv/relance``) or a ``.env`` file; ``.env.example`` lists them all.
All embedded defaults live under one data directory so a demo never touches anything else.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relance.redaction import redact_url, url_secrets
from relance.resources import packaged_dbt_project
from relance.targets import target_name


class SecretUrl(SecretStr):
    """A URL that may carry a credential (``postgresql://user:pw@host/db``): as secret as a ``SecretStr`` (masked in
    ``repr``, JSON and Prefect parameters), but infrastructure, not a provider credential: ``relance demo`` keeps
    it while it drops provider keys (``relance.demo.safety`` matches ``SecretStr`` itself)."""


class SourceSpec(BaseModel):
    """One receivables source the daily run imports: a path and the profile that reads it."""

    path: Path
    profile: str = "demo"  # demo | ibm_ar | fec | sql | a profile YAML path


class RecipientGroup(BaseModel):
    """People who receive relance's own emails: who, in which language, and which of them."""

    model_config = ConfigDict(extra="forbid")

    emails: list[str] = Field(min_length=1)
    language: Literal["fr", "en"] = "fr"
    #: weekly: the weekly finance report; flash: the daily flash; failures: a scheduled run that failed
    receives: list[Literal["weekly", "flash", "failures"]] = Field(min_length=1)


class Settings(BaseSettings):
    # hide_input_in_errors: a bad value must not echo a secret in a validation error's text
    model_config = SettingsConfigDict(
        env_prefix="RELANCE_", env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    # --- locations -------------------------------------------------------------------------
    project_root: Path | None = Field(
        default=None,
        description="A checkout whose dbt_project/ to use instead of the one shipped in the installed package.",
    )
    data_dir: Path | None = Field(
        default=None, description="Everything the pipeline writes. Default: ./data under the working directory."
    )
    warehouse_path: Path | None = Field(default=None, description="DuckDB file. Default: <data_dir>/warehouse.duckdb")
    duckdb_memory_limit: str = Field(
        default="4GB", description="Memory cap of dbt's DuckDB (it spills to disk past it), e.g. '4GB', '16GB'."
    )
    mlflow_tracking_uri: SecretUrl | None = Field(
        default=None,
        description="Default: sqlite:///<data_dir>/mlflow/mlflow.db. A secret: it may carry a password "
        "(postgresql://user:pw@host/db, https://user:token@mlflow...); shown only as `redacted_mlflow_uri`.",
    )
    mlflow_artifact_root: Path | None = Field(default=None, description="Default: <data_dir>/mlflow/artifacts")
    prefect_home: Path | None = Field(default=None, description="Default: <data_dir>/prefect")
    landing_dir: Path | None = Field(
        default=None, description="Where source exports are dropped. Default: <data_dir>/landing"
    )

    # --- the PostgreSQL dbt target (`relance dbt --target postgres ...`) ----------------------
    # The password is never a setting: dbt reads RELANCE_PG_PASSWORD from the environment when it connects.
    pg_host: str = Field(default="localhost", description="PostgreSQL host of the dbt `postgres` target.")
    pg_port: int = Field(default=5432, description="PostgreSQL port of the dbt `postgres` target.")
    pg_user: str = Field(default="relance", description="PostgreSQL user of the dbt `postgres` target.")
    pg_dbname: str = Field(default="relance", description="PostgreSQL database of the dbt `postgres` target.")
    dbt_threads: int = Field(default=2, description="Models dbt builds in parallel.")
    dbt_node_tasks: bool = Field(
        default=False,
        description="Show every dbt model and test as a Prefect task (prefect-dbt). Off by default: on the embedded "
        "Prefect API it makes the dbt stages about three times slower; the flow publishes the node results as an "
        "artifact either way.",
    )

    sources: list[SourceSpec] = Field(
        default_factory=list,
        description='Sources of the daily run, e.g. [{"path": "exports/FEC.txt", "profile": "fec"}] '
        "(JSON in RELANCE_SOURCES). Empty: the landing directory with the demo profile.",
    )

    # --- ML ----------------------------------------------------------------------------------
    model_name: str = "payment_delay"
    target_kind: Literal["unpaid_after_due", "unpaid_after", "late_over"] = Field(
        default="unpaid_after_due",
        description="What 'late' means for the model (models/contract.py, TARGET_KIND_DOCS): unpaid_after_due "
        "(still unpaid horizon_days after the later of due date and as-of date), unpaid_after (still unpaid "
        "horizon_days after the as-of date), late_over (paid more than late_threshold_days after the due date).",
    )
    horizon_days: int = Field(
        default=30, ge=0, description="N of the unpaid_after_due and unpaid_after targets, in days."
    )
    late_threshold_days: int = Field(
        default=0, ge=0, description="N of the late_over target: days after the due date (0: late at all)."
    )
    snapshot_interval_days: int = Field(
        default=7, description="Spacing of as-of snapshots in the training grid (weekly; built incrementally)."
    )
    history_start_days: int = Field(
        default=120, description="First training snapshot this many days after the first invoice."
    )
    min_auc_gain: float = Field(
        default=0.0, description="A candidate becomes champion only if its test AUC beats the baseline by this."
    )

    # --- reminders and channels --------------------------------------------------------------
    sender_email: str = "relances@example.com"
    sender_name: str = "Service recouvrement"
    sender_address: str = Field(
        default="", description="The creditor's postal address printed on letters (lines separated by ' | ')."
    )
    sendgrid_api_key: SecretStr | None = Field(
        default=None, description="Unset: emails are written to the local outbox instead of sent."
    )
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_sandbox_mode: bool = Field(
        default=False, description="SendGrid validates every message and delivers none (mail_settings.sandbox_mode)."
    )
    sendgrid_unsubscribe_group_id: int | None = Field(
        default=None, description="SendGrid unsubscribe group (asm.group_id) for consumers' emails; unset: none."
    )
    payment_link_template: str | None = Field(
        default=None,
        description="A payment link per invoice, e.g. 'https://pay.example.com/{invoice_id}?amount={amount}"
        "&currency={currency}' ({invoice_id}, {amount}, {currency}, {customer_id} filled in); unset: no link.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None,
        description="The Event Webhook's verification key (base64 DER, from the SendGrid console); unset: the "
        "webhook service refuses SendGrid events.",
    )
    twilio_account_sid: str | None = Field(default=None, description="Unset: SMS are written to the local outbox.")
    twilio_auth_token: SecretStr | None = Field(default=None, description="Twilio auth token (a secret).")
    twilio_from_number: str | None = Field(default=None, description="The E.164 number SMS are sent from.")
    twilio_messaging_service_sid: str | None = Field(
        default=None, description="A Twilio Messaging Service (MG...) to send from instead of a number."
    )
    twilio_host: str = "https://api.twilio.com"
    sms_default_region: str = Field(
        default="FR", description="Region for phone numbers written without a country code (phonenumbers)."
    )
    webhook_host: str = Field(default="127.0.0.1", description="Where `relance webhooks serve` listens.")
    webhook_port: int = Field(default=8787, ge=1, le=65535)
    webhook_public_url: str | None = Field(
        default=None,
        description="The public base URL providers call (Twilio signs the full URL it posts to); unset: "
        "http://<webhook_host>:<webhook_port>.",
    )
    webhook_max_age_seconds: int = Field(
        default=300, ge=1, description="A signed SendGrid batch older than this is refused (replay protection)."
    )
    late_penalty_margin_points: float = Field(
        default=10.0, ge=0, description="L441-10: late-payment penalties at the ECB rate plus this many points."
    )
    recovery_indemnity_eur: float = Field(
        default=40.0, ge=0, description="D441-5: fixed recovery indemnity per invoice paid late (professionals)."
    )
    sending_alert_after_minutes: int = Field(
        default=30,
        ge=1,
        description="A message left 'sending' (outcome unknown) longer than this is reported in every run.",
    )
    max_reminders_per_run: int = 5000
    # --- the reminder engine (relance.reminders.engine) and the rules checked before each send (.rules) ---
    scenarios_path: Path | None = Field(
        default=None,
        description="Reminder scenarios YAML (check it with `relance policy check FILE`). Default: the set shipped "
        "in relance/reminders/scenarios/default.yaml.",
    )
    channels_enabled: list[Literal["email", "sms", "letter", "call"]] = Field(
        default=["email", "sms", "letter", "call"],
        description="Channels the engine may choose (a scenario's other channels are skipped).",
    )
    materiality_min: float = Field(default=15.0, ge=0, description="A customer owing less than this is not chased.")
    promise_grace_days: int = Field(
        default=3, ge=0, description="A promise to pay pauses reminders until its date plus this many days."
    )
    b2c_contact_hours: tuple[int, int] = Field(
        default=(8, 20), description="Local hours (start, end) when consumers may get an email or SMS."
    )
    b2b_contact_hours: tuple[int, int] = Field(
        default=(8, 19), description="Local hours (start, end) when professional debtors may be contacted."
    )
    contact_weekdays_only: bool = Field(default=True, description="No contact on Saturdays and Sundays.")
    contact_skip_public_holidays: bool = Field(
        default=True, description="No contact on the debtor's country's public holidays (the holidays package)."
    )
    max_contacts_per_window: int = Field(default=2, ge=1, description="At most this many contacts per customer ...")
    contact_window_days: int = Field(default=7, ge=1, description="... in any window of this many days.")
    min_hours_between_contacts: float = Field(default=48.0, ge=0, description="Minimum gap between two contacts.")
    max_calls_per_week: int = Field(default=2, ge=0, description="Calls to one customer in any 7 days.")
    negotiator_minutes_per_day: float = Field(
        default=480.0, ge=0, description="Minutes the negotiators spend on calls per day (the call list's capacity)."
    )
    call_minutes: float = Field(default=8.0, gt=0, description="Average length of a collection call.")
    negotiator_cost_per_minute: float = Field(default=0.60, ge=0)
    email_cost: float = Field(default=0.02, ge=0)
    sms_cost: float = Field(default=0.07, ge=0)
    letter_cost: float = Field(default=1.80, ge=0, description="Printing and postage of one letter.")
    holdout_salt: str = Field(
        default="relance-holdout-v1",
        description="Seed of the experiments' random arms: change it to draw new holdout groups.",
    )
    response_model_min_history: int = Field(
        default=500, ge=50, description="Past contacts needed before the channel-response model chooses channels."
    )
    send_ledger_path: Path | None = Field(
        default=None,
        description="The durable record of every reminder sent (SQLite), kept apart from the rebuildable warehouse: "
        "back it up. Default: <data_dir>/ledger/sends.sqlite. `relance demo --fresh` never deletes it.",
    )

    # --- freshness: nothing is sent on a stale picture of the ledger ---------------------------
    timezone: str = Field(
        default="Europe/Paris", description="IANA time zone that decides what 'today' is for a run's as-of date."
    )
    max_source_age_hours: float = Field(
        default=72.0,
        gt=0,
        description="Reminders go out only if every source brought new content within this many hours.",
    )

    # --- external company-risk data (relance.risk, flows/refresh_company_risk.py) ---------------
    risk_mode: Literal["files", "live", "off"] = Field(
        default="files",
        description="files: read notice files dropped in <landing_dir>/risk (the default: no network); live: query "
        "the registries (BODACC, Recherche d'entreprises, Companies House when a key is set); off: skip.",
    )
    risk_providers: list[str] = Field(
        default=["bodacc", "recherche_entreprises", "companies_house"],
        description="Providers of the live mode, by name, or 'module:Class' for one of your own (a paid source "
        "implementing relance.risk.providers.RiskProvider).",
    )
    bodacc_url: str = "https://bodacc-datadila.opendatasoft.com"
    recherche_entreprises_url: str = "https://recherche-entreprises.api.gouv.fr"
    companies_house_url: str = "https://api.company-information.service.gov.uk"
    companies_house_api_key: SecretStr | None = Field(
        default=None, description="Companies House REST API key; unset: UK debtors are not checked."
    )
    risk_http_timeout_seconds: float = Field(default=20.0, gt=0)
    risk_http_max_attempts: int = Field(
        default=4, ge=1, description="Tries per registry request (429 / 5xx / timeouts are retried with backoff)."
    )
    risk_cache_ttl_hours: float = Field(
        default=20.0, ge=0, description="A registry answer younger than this is reused from <data_dir>/risk_cache."
    )
    risk_stale_after_hours: int = Field(
        default=48,
        ge=1,
        description="A company whose last successful check is older than this is flagged stale in the worklist and "
        "the report (the run goes on with the last known data).",
    )
    claim_deadline_months: int = Field(
        default=2,
        ge=1,
        description="Months after the BODACC publication to declare a claim (R622-24: 2; 4 for a creditor outside "
        "metropolitan France).",
    )
    claim_alert_days: int = Field(
        default=15, ge=0, description="Finance is alerted when a claim's deadline is this many days away."
    )
    risk_recent_days: int = Field(
        default=365, ge=1, description="Window of the 'recent director change / head-office move' features."
    )
    degrading_min_days: int = Field(
        default=10,
        ge=1,
        description="A reliable payer is 'degrading' when its recent mean days late exceeds its own history by at "
        "least this many days (and two standard deviations).",
    )
    finance_alert_recipients: list[str] = Field(
        default=["finance@example.com"], description="Who receives the risk alerts email."
    )

    @field_validator("b2c_contact_hours", "b2b_contact_hours")
    @classmethod
    def _hours(cls, v: tuple[int, int]) -> tuple[int, int]:
        start, end = v
        if not 0 <= start < end <= 24:
            raise ValueError(f"contact hours must be 0 <= start < end <= 24, got {v}")
        return v

    def engine_config(self):  # -> relance.reminders.engine.EngineConfig (imported here to keep settings light)
        from relance.reminders.engine import EngineConfig
        from relance.reminders.nba import ChannelCosts

        return EngineConfig(
            enabled_channels=tuple(self.channels_enabled),
            materiality_min=self.materiality_min,
            promise_grace_days=self.promise_grace_days,
            call_capacity_minutes=self.negotiator_minutes_per_day,
            max_messages=self.max_reminders_per_run,
            holdout_salt=self.holdout_salt,
            sms_region=self.sms_default_region,
            costs=ChannelCosts(
                email=self.email_cost,
                sms=self.sms_cost,
                letter=self.letter_cost,
                call_minutes=self.call_minutes,
                negotiator_cost_per_minute=self.negotiator_cost_per_minute,
            ),
        )

    def contact_rules(self):  # -> relance.reminders.rules.ContactRules
        from datetime import time

        from relance.reminders.rules import ContactRules

        def hours(v: tuple[int, int]) -> tuple[time, time]:
            return time(v[0]), (time(23, 59, 59) if v[1] == 24 else time(v[1]))

        return ContactRules(
            b2c_hours=hours(self.b2c_contact_hours),
            b2b_hours=hours(self.b2b_contact_hours),
            weekdays_only=self.contact_weekdays_only,
            skip_public_holidays=self.contact_skip_public_holidays,
            max_contacts=self.max_contacts_per_window,
            window_days=self.contact_window_days,
            min_gap_hours=self.min_hours_between_contacts,
            max_calls_per_week=self.max_calls_per_week,
            materiality_min=self.materiality_min,
            default_timezone=self.timezone,
        )

    # --- reports -----------------------------------------------------------------------------
    report_top_n: int = 20
    report_recipients: dict[str, RecipientGroup] = Field(
        default={
            "finance": RecipientGroup(emails=["finance@example.com"], language="fr", receives=["weekly", "flash"]),
            "data": RecipientGroup(emails=["data@example.com"], language="en", receives=["failures"]),
        },
        description="Recipient groups of the finance report, the daily flash and failure notices, as JSON: "
        '{"finance": {"emails": ["a@b.fr"], "language": "fr", "receives": ["weekly", "flash"]}, ...}',
    )
    late_payment_cost_rate: float = Field(
        default=0.08,
        ge=0,
        le=1,
        description="Yearly rate at which money owed late costs the company (its cost of funding), for the report's "
        "cost of late payment.",
    )
    forecast_weeks: int = Field(default=13, ge=1, le=52, description="Weeks of the cash-in forecast.")
    forecast_backtest_weeks: int = Field(
        default=13, ge=1, le=52, description="Past weeks the forecast is scored on against what was actually paid."
    )
    forecast_refit_every_weeks: int = Field(
        default=4,
        ge=1,
        le=13,
        description="The backtest fits a model every this many weeks (each on labels known before its own date; "
        "the weeks between use the last one): 1 is the closest to a weekly retraining, 4 costs a third of the time.",
    )

    # --- lineage (OpenLineage) and where people open things -------------------------------------
    openlineage_transport: Literal["file", "http", "none"] = Field(
        default="file",
        description="file: JSON lines in <data_dir>/lineage/openlineage.jsonl; http: POST to a Marquez-compatible "
        "collector at RELANCE_OPENLINEAGE_URL; none: no events.",
    )
    openlineage_url: str | None = Field(
        default=None, description="Base URL of the collector (events go to <url>/api/v1/lineage)."
    )
    openlineage_endpoint: str = "api/v1/lineage"
    openlineage_api_key: SecretStr | None = Field(default=None, description="Bearer token of the collector, if any.")
    openlineage_namespace: str = Field(default="relance", description="The OpenLineage namespace of relance's jobs.")
    prefect_ui_url: str = Field(
        default="http://127.0.0.1:4200", description="Where people open the Prefect UI (links in lineage, status)."
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000", description="Where people open the MLflow UI (links in lineage, status)."
    )

    def recipients_for(self, what: str) -> dict[str, RecipientGroup]:
        """The recipient groups that receive ``what`` (weekly, flash, failures), by group name."""
        return {name: group for name, group in self.report_recipients.items() if what in group.receives}

    @field_validator("project_root", "data_dir", "warehouse_path", "landing_dir", "send_ledger_path", mode="after")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        """Relative paths are taken from the working directory when the settings are built, once."""
        return None if v is None else v.expanduser().resolve()

    # Derived paths: one place decides the layout under data_dir.
    @cached_property
    def data(self) -> Path:
        return self.data_dir or (Path.cwd() / "data").resolve()

    @cached_property
    def warehouse(self) -> Path:
        return self.warehouse_path or self.data / "warehouse.duckdb"

    @cached_property
    def landing(self) -> Path:
        return self.landing_dir or self.data / "landing"

    @cached_property
    def ground_truth_dir(self) -> Path:
        return self.data / "ground_truth"

    @cached_property
    def send_ledger(self) -> Path:
        """The durable send ledger (never under a path :meth:`owned_paths` lists)."""
        return self.send_ledger_path or self.data / "ledger" / "sends.sqlite"

    @cached_property
    def notification_ledger(self) -> Path:
        """The send ledger of relance's own emails to finance (risk alerts), beside the reminders' one and kept
        like it: an alert digest is sent once even after the warehouse is rebuilt."""
        return self.send_ledger.with_name("notifications.sqlite")

    @cached_property
    def outbox(self) -> Path:
        return self.data / "outbox"

    @cached_property
    def finance_outbox(self) -> Path:
        """Where emails to finance go without a SendGrid key (``<outbox>/finance/email``), apart from customers'."""
        return self.outbox / "finance"

    @property
    def target_name(self) -> str:
        """The honest name of the model's target (``models.contract.target_name``), e.g. unpaid_30d_after_due."""
        return target_name(self.target_kind, self.target_days)

    @property
    def target_days(self) -> int:
        """N of the target: late_threshold_days for late_over, horizon_days otherwise."""
        return self.late_threshold_days if self.target_kind == "late_over" else self.horizon_days

    @cached_property
    def reports_dir(self) -> Path:
        return self.data / "reports"

    @cached_property
    def lineage_dir(self) -> Path:
        """OpenLineage events (file transport) and anything else lineage keeps."""
        return self.data / "lineage"

    @cached_property
    def gx_dir(self) -> Path:
        return self.data / "gx"

    @cached_property
    def mlflow_uri(self) -> str:
        """The tracking URI in clear, to connect with; never to print (see :attr:`redacted_mlflow_uri`).

        A cached property, not a field: ``repr``, ``model_dump`` and Prefect's flow-run parameters leave it out."""
        if self.mlflow_tracking_uri is not None and self.mlflow_tracking_uri.get_secret_value():
            return self.mlflow_tracking_uri.get_secret_value()
        return f"sqlite:///{self.data / 'mlflow' / 'mlflow.db'}"

    @property
    def redacted_mlflow_uri(self) -> str:
        """The tracking URI without its credentials, for messages and logs."""
        return redact_url(self.mlflow_uri, self.secret_values())

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, in clear: what :func:`relance.redaction.install_log_redaction` hides.

        The SendGrid key, the Companies House key, and the credentials inside the MLflow tracking URI (its password,
        its credential query parameters). The PostgreSQL password is no setting (dbt reads ``RELANCE_PG_PASSWORD``):
        the redaction takes it from the environment with every other credential-named variable.
        """
        values = []
        if self.sendgrid_api_key is not None:
            values.append(self.sendgrid_api_key.get_secret_value())
        if self.companies_house_api_key is not None:
            values.append(self.companies_house_api_key.get_secret_value())
        if self.twilio_auth_token is not None:
            values.append(self.twilio_auth_token.get_secret_value())
        if self.mlflow_tracking_uri is not None:
            values += url_secrets(self.mlflow_tracking_uri.get_secret_value())
        values += url_secrets(self.sendgrid_host)
        return [v for v in values if v]

    @cached_property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow_artifact_root or self.data / "mlflow" / "artifacts"

    @cached_property
    def prefect_dir(self) -> Path:
        return self.prefect_home or self.data / "prefect"

    @cached_property
    def dbt_project_dir(self) -> Path:
        """The dbt project: shipped inside the installed package, or ``<project_root>/dbt_project``."""
        if self.project_root is not None:
            return self.project_root / "dbt_project"
        return packaged_dbt_project()

    @cached_property
    def dbt_dir(self) -> Path:
        """Everything dbt writes (profile, artefacts, logs) stays with the data, never in the package."""
        return self.data / "dbt"

    @cached_property
    def dbt_profiles_dir(self) -> Path:
        """Where ``relance.dbt.write_profile`` writes the ``profiles.yml`` derived from these settings."""
        return self.dbt_dir

    @cached_property
    def dbt_target_dir(self) -> Path:
        """dbt artefacts (manifest, run_results, docs site)."""
        return self.dbt_dir / "target"

    @cached_property
    def dbt_log_dir(self) -> Path:
        return self.dbt_dir / "logs"

    @cached_property
    def dbt_runs_dir(self) -> Path:
        """Artefacts of every dbt invocation, by invocation id, so lineage ids keep resolving."""
        return self.data / "dbt" / "runs"

    @property
    def daily_sources(self) -> list[SourceSpec]:
        return self.sources or [SourceSpec(path=self.landing, profile="demo")]

    def owned_paths(self) -> list[Path]:
        """Everything relance writes under the data directory and can rebuild (what ``relance demo --fresh``
        deletes). Never the send ledger: forgetting a send would send it again."""
        return [
            self.warehouse,
            self.warehouse.with_name(self.warehouse.name + ".wal"),
            self.warehouse.with_name(self.warehouse.name + ".tmp"),
            self.landing,
            self.ground_truth_dir,
            self.outbox,
            self.reports_dir,
            self.gx_dir,
            self.data / "mlflow" if self.mlflow_artifact_root is None else self.mlflow_artifacts,
            self.prefect_dir,
            self.dbt_dir,
            self.data / "risk_cache",
            self.lineage_dir,
            self.data / "backfill.json",
        ]

    def ensure_dirs(self) -> None:
        for p in (
            self.data,
            self.landing,
            self.outbox,
            self.reports_dir,
            self.gx_dir,
            self.mlflow_artifacts,
            self.prefect_dir,
            self.warehouse.parent,
        ):
            p.mkdir(parents=True, exist_ok=True)

    def tool_environment(self) -> dict[str, str]:
        """Environment variables that point Prefect (and MLflow's own CLI) at this configuration, and turn every
        tool's telemetry off.

        Set once by entry points (CLI, tests) before Prefect is imported: Prefect reads its home at import time.
        ``MLFLOW_TRACKING_URI`` is the URI in clear (MLflow's CLI connects with it): this mapping goes to a process
        environment, never to a log line or a command line.
        dbt needs none of them: ``relance.dbt`` passes it arguments and a profile written from these settings.
        """
        return {
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "PREFECT_HOME": str(self.prefect_dir),
            # the ephemeral API server gets 20 s to start by default: too tight on a busy 2-core machine
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            # the run's temporary API server would register every installed block type (importing prefect-dbt,
            # hence dbt, a second time) before it answers: 3 s of each run's start-up for blocks no flow uses.
            # `relance ui` starts its server without this, so the UI lists the block types.
            "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "GX_ANALYTICS_ENABLED": "false",
        }


def parse_as_of(value: str | date | None, default: date) -> date:
    if value is None:
        return default
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"as-of date must be YYYY-MM-DD, got {value!r}") from exc
