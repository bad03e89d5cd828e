"""OpenLineage events for relance's runs: who ran, what it read, what it wrote, and the ids to join back.

One event model (openlineage-python's ``event_v2``), one emitter built from :class:`~relance.settings.Settings`:

* ``openlineage_transport = "file"`` (the default): JSON lines appended to ``<data_dir>/lineage/openlineage.jsonl``
  (one line per event, written in one locked write so concurrent runs never interleave);
* ``"http"``: POST to a Marquez-compatible collector at ``<openlineage_url>/<openlineage_endpoint>``
  (``api/v1/lineage``), with ``openlineage_api_key`` as a bearer token. A collector that is down never fails a run:
  the event goes to ``<data_dir>/lineage/openlineage.undelivered.jsonl`` (:func:`redeliver` sends them later), a
  warning is logged once, and the collector is left alone for a minute;
* ``"none"``: nothing.

Ids (the agreement with ``relance lineage show``): a Prefect flow run is the OpenLineage run of job
``relance.<flow-name>`` (its runId is the flow run id); a child flow's events carry a ``parent`` facet naming the
flow that called it and ``root`` the outermost one (the daily run); dbt models are jobs ``dbt.<schema>.<model>``
whose parent is the build-features run (``relance.openlineage_dbt``). Every run carries a ``relance`` facet
(:class:`RelanceRunFacet`) with the Prefect flow run, dbt invocation, MLflow run / model version and raw batch ids it
knows, plus ``processing_engine`` and ``nominalTime`` (the as-of date).

Dataset names: warehouse tables ``duckdb://<warehouse file name>`` / ``<schema>.<table>``; files
``file://<host>`` / absolute path (``datasetVersion`` = the file's sha256 when known); MLflow models
``mlflow://<tracking uri, credentials removed>`` / ``models/<name>/<version>``; messages
``sendgrid://<host>`` / ``v3/mail/send``, ``twilio://<host>`` / ``2010-04-01/Messages``, the local outbox
``outbox://<host>`` / ``<outbox dir>/<channel>``; the send ledgers ``sqlite://<host>`` / absolute path.

No Prefect import here: ``flows/_lineage.py`` supplies the flow run ids.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider
from openlineage.client.uuid import generate_new_uuid

from relance.lineage import package_version
from relance.redaction import environment_secrets, redact

if TYPE_CHECKING:
    from relance.settings import Settings

log = logging.getLogger(__name__)

EVENTS_FILE = "openlineage.jsonl"
UNDELIVERED_FILE = "openlineage.undelivered.jsonl"
#: the key of relance's own run facet, and where its JSON schema ships (``relance/openlineage_schemas``)
RELANCE_FACET = "relance"
RELANCE_FACET_SCHEMA_ID = "urn:relance:openlineage:RelanceRunFacet:1-0-0"
RELANCE_FACET_SCHEMA_URL = RELANCE_FACET_SCHEMA_ID + "#/$defs/RelanceRunFacet"
JOB_PREFIX = "relance."
#: how long a collector that failed is left alone before the next event tries it again
COLLECTOR_BACKOFF_SECONDS = 60.0
#: few, quick retries: a collector that is down must cost a run seconds, not minutes
HTTP_RETRY = {
    "total": 2,
    "read": 1,
    "connect": 1,
    "backoff_factor": 0.5,
    "status_forcelist": [429, 500, 502, 503, 504],
    "allowed_methods": ["HEAD", "POST"],
    "respect_retry_after_header": False,  # a collector asking for an hour's pause must not hold the run
}
HTTP_TIMEOUT_SECONDS = 5.0


@lru_cache(maxsize=1)
def producer() -> str:
    """The ``producer`` URI of relance's events and facets (a URN: relance has no canonical URL)."""
    return f"urn:relance:{_relance_version()}"


@lru_cache(maxsize=1)
def _relance_version() -> str:
    return package_version()  # reading package metadata costs milliseconds: once per process


@lru_cache(maxsize=8)
def _installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def schema_path() -> Path:
    """The JSON schema of :class:`RelanceRunFacet`, shipped in the package."""
    return Path(__file__).resolve().parent / "openlineage_schemas" / "RelanceRunFacet.json"


@attr.define
class RelanceRunFacet(RunFacet):
    """Ids that join a run back to relance's records (see ``openlineage_schemas/RelanceRunFacet.json``)."""

    prefect_flow_run_id: str | None = attr.field(default=None)
    prefect_flow_run_url: str | None = attr.field(default=None)
    as_of_date: str | None = attr.field(default=None)
    dbt_invocation_id: str | None = attr.field(default=None)
    mlflow_run_id: str | None = attr.field(default=None)
    model_name: str | None = attr.field(default=None)
    model_version: str | None = attr.field(default=None)
    raw_batch_ids: list[str] | None = attr.field(default=None)
    validation_id: str | None = attr.field(default=None)
    git_sha: str | None = attr.field(default=None)
    relance_version: str | None = attr.field(default=None)
    counts: dict[str, float] | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return RELANCE_FACET_SCHEMA_URL


#: the fields of :class:`RelanceRunFacet` a caller may set
JOIN_KEYS = tuple(
    a.name for a in attr.fields(RelanceRunFacet) if not a.name.startswith("_") and a.name not in ("counts",)
)


# --- naming ------------------------------------------------------------------------------------------------------


def job_name(flow_name: str) -> str:
    """``relance.<flow-name>``: the job of a Prefect flow."""
    return flow_name if flow_name.startswith(JOB_PREFIX) else JOB_PREFIX + flow_name


def _host() -> str:
    return socket.gethostname() or "localhost"


def warehouse_namespace(warehouse: Path) -> str:
    """``duckdb://<warehouse file name>``: the name dbt gives the database too, so a copied warehouse keeps its
    datasets."""
    return f"duckdb://{Path(warehouse).name}"


def table(settings: Settings, relation: str, *, rows: int | None = None) -> OutputDataset:
    """A warehouse relation (``schema.table``) as a dataset; ``rows`` adds output statistics (rows written)."""
    if relation.count(".") != 1:
        raise ValueError(f"a warehouse relation is schema.table, got {relation!r}")
    return _dataset(warehouse_namespace(settings.warehouse), relation, rows=rows)


def file_dataset(path: Path | str, *, sha256: str | None = None, rows: int | None = None) -> OutputDataset:
    """A local file or folder: ``file://<host>`` / absolute path; ``sha256`` is its dataset version."""
    return _dataset(f"file://{_host()}", str(Path(path).expanduser().resolve()), rows=rows, facets=_version(sha256))


def source_dataset(source_file: str, *, sha256: str | None = None) -> OutputDataset:
    """What a raw batch read (``ops.ingest_batches.source_file``): a file (``file://<host>`` / path), a database
    (``postgres://host:port`` / ``<database>#<entity>``, from the URL without credentials the SQL source records), or
    another named source (``relance://<host>`` / the name)."""
    if "://" in source_file and not source_file.startswith("file://"):
        parts = urlsplit(source_file)
        scheme = parts.scheme.split("+", 1)[0].replace("postgresql", "postgres")
        name = parts.path.lstrip("/") + (f"#{parts.fragment}" if parts.fragment else "")
        return _dataset(_api_namespace(scheme, source_file), name or source_file, facets=_version(sha256))
    path = source_file.removeprefix("file://")
    if Path(path).is_absolute():
        return file_dataset(path, sha256=sha256)
    return _dataset(f"relance://{_host()}", source_file, facets=_version(sha256))


def _version(sha256: str | None) -> dict[str, Any]:
    if not sha256:
        return {}
    return {"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=sha256, producer=producer())}


def mlflow_namespace(settings: Settings) -> str:
    """``mlflow://<tracking URI without credentials>``."""
    return f"mlflow://{settings.redacted_mlflow_uri}"


def mlflow_model(settings: Settings, model_name: str, version: str | int) -> OutputDataset:
    """A registered MLflow model version: ``models/<name>/<version>``."""
    return _dataset(mlflow_namespace(settings), f"models/{model_name}/{version}")


def http_dataset(url: str, name: str) -> OutputDataset:
    """A dataset behind an HTTP API: namespace ``<scheme>://<host[:port]>`` (no credentials, no path)."""
    return _dataset(_api_namespace(urlsplit(url).scheme or "https", url), name)


def sqlite_dataset(path: Path, *, rows: int | None = None) -> OutputDataset:
    """A SQLite file (the send ledgers): ``sqlite://<host>`` / absolute path."""
    return _dataset(f"sqlite://{_host()}", str(Path(path).resolve()), rows=rows)


def outbox_dataset(outbox_dir: Path, channel: str, *, rows: int | None = None) -> OutputDataset:
    """Messages written to the local outbox instead of a provider: ``outbox://<host>`` / ``<outbox>/<channel>``."""
    return _dataset(f"outbox://{_host()}", str(Path(outbox_dir).resolve() / channel), rows=rows)


def channel_dataset(
    settings: Settings, channel: str, *, outbox_dir: Path | None = None, rows: int | None = None
) -> OutputDataset:
    """Where a channel's messages went with these settings: SendGrid, Twilio or the outbox (letters and the call
    list always go to the outbox)."""
    if channel == "email" and settings.sendgrid_api_key is not None:
        return _dataset(_api_namespace("sendgrid", settings.sendgrid_host), "v3/mail/send", rows=rows)
    if channel == "sms" and settings.twilio_account_sid and settings.twilio_auth_token is not None:
        return _dataset(_api_namespace("twilio", settings.twilio_host), "2010-04-01/Messages", rows=rows)
    return outbox_dataset(outbox_dir or settings.outbox, OUTBOX_FOLDERS.get(channel, channel), rows=rows)


#: the outbox folder of a channel when it is not the channel's name
OUTBOX_FOLDERS = {"call": "calls"}


def _api_namespace(scheme: str, url: str) -> str:
    """``<scheme>://<host[:port]>`` of an API's base URL (no credentials, no path)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{scheme}://{host}:{parts.port}" if parts.port else f"{scheme}://{host}"


def _dataset(namespace: str, name: str, *, rows: int | None = None, facets: dict | None = None) -> OutputDataset:
    output_facets = {}
    if rows is not None:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=int(rows), producer=producer()
        )
    return OutputDataset(namespace=namespace, name=name, facets=facets or {}, outputFacets=output_facets)


def as_input(ds: OutputDataset | InputDataset) -> InputDataset:
    """The same dataset on the input side (output statistics dropped)."""
    return InputDataset(namespace=ds.namespace, name=ds.name, facets=dict(ds.facets or {}))


def as_output(ds: OutputDataset | InputDataset) -> OutputDataset:
    if isinstance(ds, OutputDataset):
        return ds
    return OutputDataset(namespace=ds.namespace, name=ds.name, facets=dict(ds.facets or {}))


# --- transports --------------------------------------------------------------------------------------------------


class AppendFileTransport(FileTransport):
    """openlineage's file transport in append mode, each event written in one locked ``write``: two processes
    (the daily run and the hourly risk watch) appending to one JSONL file never interleave their lines."""

    def emit(self, event: Any) -> None:
        path = Path(self.config.log_file_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (Serde.to_json(event) + "\n").encode("utf-8")
        with open(path, "ab", buffering=0) as f, _locked(f):
            f.write(line)


@contextlib.contextmanager
def _locked(f: Any) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: one process at a time is the operator's job
        yield
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def build_client(settings: Settings) -> OpenLineageClient | None:
    """The OpenLineage client these settings ask for (``None`` for ``openlineage_transport = "none"``).

    Raises:
        ValueError: ``http`` without ``openlineage_url``.
    """
    kind = settings.openlineage_transport
    if kind == "none":
        return None
    if kind == "file":
        transport: Any = AppendFileTransport(
            FileConfig(log_file_path=str(settings.lineage_dir / EVENTS_FILE), append=True)
        )
    elif kind == "http":
        if not settings.openlineage_url:
            raise ValueError("RELANCE_OPENLINEAGE_TRANSPORT=http needs RELANCE_OPENLINEAGE_URL (the collector)")
        key = settings.openlineage_api_key.get_secret_value() if settings.openlineage_api_key else None
        transport = HttpTransport(
            HttpConfig(
                url=settings.openlineage_url,
                endpoint=settings.openlineage_endpoint,
                timeout=HTTP_TIMEOUT_SECONDS,
                auth=ApiKeyTokenProvider({"apiKey": key}) if key else TokenProvider({}),
                retry=dict(HTTP_RETRY),
            )
        )
    else:  # pragma: no cover - Settings' Literal refuses anything else
        raise ValueError(f"unknown OpenLineage transport {kind!r}")
    return OpenLineageClient(transport=transport)


@dataclass
class Emitter:
    """Sends events through one client and never raises: a failed send is logged (once per outage), the event kept
    in ``spool`` for :func:`redeliver`, and the transport left alone for :data:`COLLECTOR_BACKOFF_SECONDS`."""

    client: OpenLineageClient | None
    namespace: str
    spool: Path | None = None
    prefect_ui_url: str | None = None
    timezone: str = "UTC"
    #: values masked wherever an event carries free text (error messages, stack traces)
    secrets: tuple[str, ...] = ()
    emitted: int = 0
    failed: int = 0
    seconds: float = 0.0
    _down_until: float = 0.0
    _warned: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def emit(self, event: RunEvent) -> bool:
        """Send one event; False when it could not be (it is then in the spool, if there is one)."""
        if self.client is None:
            return False
        started = time.perf_counter()
        try:
            if time.monotonic() < self._down_until:
                self._keep(event)
                return False
            try:
                self.client.emit(event)
            except Exception as exc:  # a collector that is down, refuses, or a full disk: never the run's problem
                self._down_until = time.monotonic() + COLLECTOR_BACKOFF_SECONDS
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "OpenLineage events not delivered (%s: %s); kept in %s and the run goes on",
                        type(exc).__name__,
                        str(exc)[:300],
                        self.spool or "nowhere",
                    )
                self._keep(event)
                return False
            with self._lock:
                self.emitted += 1
            return True
        finally:
            self.seconds += time.perf_counter() - started

    def recovered(self) -> None:
        """The collector is known to answer again: send the next event instead of keeping it."""
        self._down_until = 0.0
        self._warned = False

    def emit_all(self, events: Iterable[RunEvent]) -> int:
        return sum(self.emit(e) for e in events)

    def _keep(self, event: RunEvent) -> None:
        with self._lock:
            self.failed += 1
        if self.spool is None:
            return
        try:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with open(self.spool, "ab", buffering=0) as f, _locked(f):
                f.write((Serde.to_json(event) + "\n").encode("utf-8"))
        except OSError as exc:
            log.warning("OpenLineage event lost: cannot write %s: %s", self.spool, exc)


_EMITTERS: dict[tuple, Emitter] = {}
_EMITTERS_LOCK = threading.Lock()


def emitter_for(settings: Settings) -> Emitter:
    """The emitter of these settings, one per process and configuration (its outage state and counts are shared
    by every flow of a run). A misconfiguration (``http`` without a URL) logs an error and emits nothing."""
    key = (
        settings.openlineage_transport,
        settings.openlineage_url,
        settings.openlineage_endpoint,
        str(settings.lineage_dir),
        settings.openlineage_namespace,
        settings.openlineage_api_key.get_secret_value() if settings.openlineage_api_key else None,
    )
    with _EMITTERS_LOCK:
        found = _EMITTERS.get(key)
        if found is None:
            try:
                client = build_client(settings)
            except Exception as exc:
                log.error("OpenLineage disabled: %s", exc)
                client = None
            found = Emitter(
                client,
                settings.openlineage_namespace,
                spool=settings.lineage_dir / UNDELIVERED_FILE if settings.openlineage_transport == "http" else None,
                prefect_ui_url=settings.prefect_ui_url,
                timezone=settings.timezone,
                secrets=_secrets(settings),
            )
            _EMITTERS[key] = found
        return found


def _secrets(settings: Settings) -> tuple[str, ...]:
    values = [*settings.secret_values(), *environment_secrets()]
    if settings.openlineage_api_key is not None:
        values.append(settings.openlineage_api_key.get_secret_value())
    return tuple(v for v in values if v)


def redeliver(settings: Settings) -> tuple[int, int]:
    """Send the events a collector outage kept (``openlineage.undelivered.jsonl``) again, in order; returns
    (delivered, still waiting). Stops at the first failure and keeps the rest."""
    spool = settings.lineage_dir / UNDELIVERED_FILE
    client = build_client(settings)
    if client is None or not spool.is_file():
        return 0, 0
    lines = [line for line in spool.read_text(encoding="utf-8").splitlines() if line.strip()]
    sent = 0
    transport = client.transport
    for line in lines:
        try:
            _post_raw(transport, line)
        except Exception as exc:
            log.warning("redelivery stopped after %d event(s): %s", sent, exc)
            break
        sent += 1
    rest = lines[sent:]
    if rest:
        spool.write_text("\n".join(rest) + "\n", encoding="utf-8")
    else:
        spool.unlink()
        emitter_for(settings).recovered()  # the collector answers again: this process stops holding events back
    return sent, len(rest)


def _post_raw(transport: Any, line: str) -> None:
    """Deliver a stored event as it was written (its JSON, unchanged)."""
    if isinstance(transport, HttpTransport):
        body, headers = transport._prepare_request(line)
        resp = transport.session.post(
            url=transport.url.rstrip("/") + "/" + transport.endpoint.lstrip("/"),
            data=body,
            headers=headers,
            timeout=transport.timeout,
            verify=transport.verify,
        )
        resp.close()
        resp.raise_for_status()
    else:
        path = Path(transport.config.log_file_path)
        with open(path, "ab", buffering=0) as f, _locked(f):
            f.write((line.rstrip("\n") + "\n").encode("utf-8"))


# --- runs --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRef:
    """A run of a job: what a parent facet names."""

    namespace: str
    job: str
    run_id: str

    def facet_run(self) -> parent_run.Run:
        return parent_run.Run(runId=self.run_id)

    def facet_job(self) -> parent_run.Job:
        return parent_run.Job(namespace=self.namespace, name=self.job)


def parent_facet(parent: RunRef, root: RunRef | None) -> parent_run.ParentRunFacet:
    return parent_run.ParentRunFacet(
        run=parent.facet_run(),
        job=parent.facet_job(),
        root=None
        if root is None
        else parent_run.Root(
            run=parent_run.RootRun(runId=root.run_id),
            job=parent_run.RootJob(namespace=root.namespace, name=root.job),
        ),
        producer=producer(),
    )


def nominal_time(as_of_date: date, timezone: str) -> nominal_time_run.NominalTimeRunFacet:
    """The business day a run computed, from midnight to midnight in the operator's time zone."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(as_of_date, dt_time(), tzinfo=tz)
    end = datetime.combine(as_of_date + timedelta(days=1), dt_time(), tzinfo=tz)
    return nominal_time_run.NominalTimeRunFacet(
        nominalStartTime=start.isoformat(), nominalEndTime=end.isoformat(), producer=producer()
    )


def processing_engine(name: str = "prefect") -> processing_engine_run.ProcessingEngineRunFacet:
    """The engine that ran the job (its installed version, read without importing it) and relance's version as
    the adapter's."""
    return processing_engine_run.ProcessingEngineRunFacet(
        version=_installed_version(name),
        name=name,
        openlineageAdapterVersion=_relance_version(),
        producer=producer(),
    )


def error_facet(exc: BaseException, secrets: Iterable[str] = ()) -> error_message_run.ErrorMessageRunFacet:
    """The error and its stack trace, every known secret and secret-shaped string masked (``relance.redaction``):
    an event leaves the machine."""
    return error_message_run.ErrorMessageRunFacet(
        message=redact(f"{type(exc).__name__}: {exc}", secrets)[:4000],
        programmingLanguage="PYTHON",
        stackTrace=redact("".join(traceback.format_exception(exc)), secrets)[-20000:],
        producer=producer(),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _valid_uuid(run_id: str | None) -> str:
    """``run_id`` when it is a UUID (Prefect's flow run ids are), else a new UUIDv7."""
    if run_id:
        try:
            return str(UUID(str(run_id)))
        except ValueError:
            log.warning("run id %r is no UUID: the OpenLineage run gets a new one", run_id)
    return str(generate_new_uuid())


_CURRENT: ContextVar[LineageRun | None] = ContextVar("relance_openlineage_run", default=None)


def current() -> LineageRun | None:
    """The lineage run open in this context (the innermost :func:`run`), if any."""
    return _CURRENT.get()


@dataclass
class LineageRun:
    """One job run's lineage, between :func:`start` and :func:`complete` / :func:`fail`: add datasets and ids as
    the run learns them; COMPLETE carries them all."""

    emitter: Emitter
    job: str
    run_id: str
    parent: RunRef | None = None
    root: RunRef | None = None
    as_of_date: date | None = None
    engine: str = "prefect"
    job_type: str = "FLOW"
    inputs: dict[tuple[str, str], InputDataset] = field(default_factory=dict)
    outputs: dict[tuple[str, str], OutputDataset] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    finished: bool = False

    @property
    def ref(self) -> RunRef:
        return RunRef(self.emitter.namespace, self.job, self.run_id)

    @property
    def root_ref(self) -> RunRef:
        """The outermost run of the hierarchy (this one when it has no parent)."""
        return self.root or self.parent or self.ref

    def add_inputs(self, *datasets: InputDataset | OutputDataset) -> LineageRun:
        for ds in datasets:
            self.inputs[(ds.namespace, ds.name)] = as_input(ds)
        return self

    def add_outputs(self, *datasets: InputDataset | OutputDataset) -> LineageRun:
        for ds in datasets:
            self.outputs[(ds.namespace, ds.name)] = as_output(ds)
        return self

    def set_ids(self, **ids: Any) -> LineageRun:
        """Join keys for the ``relance`` facet (see :data:`JOIN_KEYS`); empty values are ignored."""
        unknown = set(ids) - set(JOIN_KEYS)
        if unknown:
            raise ValueError(f"unknown lineage ids {sorted(unknown)}; known: {JOIN_KEYS}")
        for key, value in ids.items():
            if value is None or value == "" or value == []:
                continue
            self.ids[key] = [str(v) for v in value] if key == "raw_batch_ids" else str(value)
        return self

    def count(self, **numbers: float | int | None) -> LineageRun:
        """What the run did, in numbers (the ``counts`` of the ``relance`` facet)."""
        self.counts.update({k: float(v) for k, v in numbers.items() if v is not None})
        return self

    def mlflow_tags(self) -> dict[str, str]:
        """Tags that make an MLflow run point at this lineage run (empty when no events are emitted)."""
        if not self.emitter.enabled:
            return {}
        tags = {
            "openlineage.namespace": self.emitter.namespace,
            "openlineage.job_name": self.job,
            "openlineage.run_id": self.run_id,
        }
        if self.parent is not None:
            tags["openlineage.parent_run_id"] = self.parent.run_id
            tags["openlineage.parent_job_name"] = self.parent.job
        if self.root_ref != self.ref:
            tags["openlineage.root_run_id"] = self.root_ref.run_id
        return tags

    def run_facets(self) -> dict[str, RunFacet]:
        facets: dict[str, RunFacet] = {"processing_engine": processing_engine(self.engine)}
        if self.parent is not None:
            facets["parent"] = parent_facet(self.parent, self.root_ref)
        if self.as_of_date is not None:
            facets["nominalTime"] = nominal_time(self.as_of_date, self.emitter.timezone)
        ids = dict(self.ids)
        if self.engine == "prefect":
            ids.setdefault("prefect_flow_run_id", self.run_id)
            if self.emitter.prefect_ui_url:
                ids.setdefault(
                    "prefect_flow_run_url", f"{self.emitter.prefect_ui_url.rstrip('/')}/runs/flow-run/{self.run_id}"
                )
        if self.as_of_date is not None:
            ids.setdefault("as_of_date", self.as_of_date.isoformat())
        ids.setdefault("relance_version", _relance_version())
        facets[RELANCE_FACET] = RelanceRunFacet(**ids, counts=dict(self.counts) or None, producer=producer())  # type: ignore[arg-type]
        return facets

    def event(self, state: RunState, error: BaseException | None = None) -> RunEvent:
        facets = self.run_facets()
        if error is not None:
            facets["errorMessage"] = error_facet(error, self.emitter.secrets)
        return RunEvent(
            eventType=state,
            eventTime=_now(),
            run=Run(runId=self.run_id, facets=facets),
            job=Job(
                namespace=self.emitter.namespace,
                name=self.job,
                facets={
                    "jobType": job_type_job.JobTypeJobFacet(
                        processingType="BATCH",
                        integration=self.engine.upper(),
                        jobType=self.job_type,
                        producer=producer(),
                    )
                },
            ),
            inputs=list(self.inputs.values()),
            outputs=list(self.outputs.values()),
            producer=producer(),
        )

    def _send(self, state: RunState, error: BaseException | None = None) -> bool:
        if not self.emitter.enabled:
            return False
        try:
            event = self.event(state, error)
        except Exception:  # a bug in building an event must not fail the run either
            log.warning("OpenLineage %s event of %s not built", state.value, self.job, exc_info=True)
            return False
        return self.emitter.emit(event)


def start(
    emitter: Emitter,
    job: str,
    run_id: str | None,
    *,
    parent: RunRef | None = None,
    root: RunRef | None = None,
    inputs: Sequence[InputDataset | OutputDataset] = (),
    outputs: Sequence[InputDataset | OutputDataset] = (),
    as_of_date: date | None = None,
    ids: Mapping[str, Any] | None = None,
    engine: str = "prefect",
    job_type: str = "FLOW",
) -> LineageRun:
    """Open a run and emit its START. ``parent`` defaults to the run open in this context (:func:`current`) and
    ``root`` to the parent's root; ``run_id`` should be the Prefect flow run id (a new UUID when it is None)."""
    enclosing = current()
    if parent is None and enclosing is not None:
        parent = enclosing.ref
        root = root or enclosing.root_ref
    elif parent is not None and root is None:
        root = parent
    lr = LineageRun(
        emitter,
        job_name(job),
        _valid_uuid(run_id),
        parent=parent,
        root=root,
        as_of_date=as_of_date,
        engine=engine,
        job_type=job_type,
    )
    lr.add_inputs(*inputs).add_outputs(*outputs)
    if ids:
        lr.set_ids(**ids)
    lr._send(RunState.START)
    return lr


def complete(lr: LineageRun, **ids: Any) -> bool:
    """Emit COMPLETE with every dataset and id the run gathered (once)."""
    if lr.finished:
        return False
    lr.finished = True
    if ids:
        lr.set_ids(**ids)
    return lr._send(RunState.COMPLETE)


def fail(lr: LineageRun, error: BaseException | None = None) -> bool:
    """Emit FAIL with the error message and stack trace (once)."""
    if lr.finished:
        return False
    lr.finished = True
    return lr._send(RunState.FAIL, error)


@contextlib.contextmanager
def run(emitter: Emitter, job: str, run_id: str | None, **kwargs: Any) -> Iterator[LineageRun]:
    """START on entry, COMPLETE on exit, FAIL (then re-raise) on an exception; runs opened inside get this one
    as their parent."""
    lr = start(emitter, job, run_id, **kwargs)
    token = _CURRENT.set(lr)
    try:
        yield lr
    except BaseException as exc:
        fail(lr, exc)
        raise
    else:
        complete(lr)
    finally:
        _CURRENT.reset(token)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a JSONL file (the file transport's), in order."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
