"""A throwaway PostgreSQL 15 server for tests, started and destroyed by the test session itself.

Used by the SQL source test and the dbt PostgreSQL target test. Nothing has to be running beforehand: CI machines
only need the Debian/Ubuntu ``postgresql-15`` package installed (``apt-get install postgresql-15``).

How it works (we run as root, and PostgreSQL refuses to run as root):

1. the binaries are located with ``dpkg -L postgresql-15`` (fallback ``/usr/lib/postgresql/15/bin``);
2. a fresh directory under the system temp dir is created and ``chown``-ed to the ``postgres`` OS user;
3. ``runuser -u postgres -- initdb`` creates a cluster there: ``trust`` on the Unix socket (only reachable
   inside that private directory), ``scram-sha-256`` over TCP, so a wrong password really fails;
4. ``runuser -u postgres -- pg_ctl -w start`` starts it on a free port on 127.0.0.1 only, with its socket in the
   same private directory; ``-w`` waits until the server accepts connections, then a real connection is made
   as a check (no sleeps);
5. a login role ``relance`` with a random password and a database ``relance`` it owns are created;
6. teardown always runs ``pg_ctl stop -m immediate`` and deletes the directory.

Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is thrown away.

Tests use the session fixture ``postgres_url`` of ``tests/conftest.py`` (one server for the whole session, each
test in a database of its own); it yields ``postgresql+psycopg://relance:<pw>@127.0.0.1:<port>/relance`` (render it
with ``sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)`` before logging it). Outside pytest, the
context manager :func:`running_postgres` does the same. Where the machine cannot run the server (not root, no
``postgres`` OS user or ``runuser``, no PostgreSQL 15 binaries) the tests skip with the reason, or fail in CI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PG_MAJOR = "15"
PG_PACKAGE = f"postgresql-{PG_MAJOR}"
DEFAULT_BIN_DIR = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
OS_USER = "postgres"
ROLE = "relance"
DATABASE = "relance"
HOST = "127.0.0.1"
_START_ATTEMPTS = 3  # a free port can be taken between probing it and the server binding it
_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """This machine cannot run a throwaway PostgreSQL (not root, binaries or ``postgres`` user missing)."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: where it lives and how to reach it."""

    bin_dir: Path
    base_dir: Path  # owned by the postgres OS user; holds data/, the socket and server.log
    port: int
    role: str
    password: str
    database: str

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for the ``relance`` role, with its password, over TCP."""
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg",
            username=self.role,
            password=self.password,
            host=HOST,
            port=self.port,
            database=database or self.database,
        ).render_as_string(hide_password=False)

    def superuser_conninfo(self, database: str = "postgres") -> dict[str, str | int]:
        """psycopg connection keywords for the ``postgres`` superuser over the private Unix socket."""
        return {"host": str(self.socket_dir), "port": self.port, "user": "postgres", "dbname": database}


def find_bin_dir() -> Path:
    """Directory holding ``initdb`` and ``pg_ctl`` of PostgreSQL 15; :class:`PostgresUnavailable` if absent."""
    candidates: list[Path] = []
    dpkg = shutil.which("dpkg")
    if dpkg:
        listing = subprocess.run([dpkg, "-L", PG_PACKAGE], capture_output=True, text=True, check=False)
        if listing.returncode == 0:
            candidates += [Path(line).parent for line in listing.stdout.splitlines() if line.endswith("/bin/initdb")]
    candidates.append(DEFAULT_BIN_DIR)
    for bin_dir in candidates:
        if all(os.access(bin_dir / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    raise PostgresUnavailable(
        f"PostgreSQL {PG_MAJOR} binaries not found (dpkg -L {PG_PACKAGE}, {DEFAULT_BIN_DIR}); "
        f"install them with: apt-get install {PG_PACKAGE}"
    )


def check_available() -> Path:
    """Return the binary directory, or raise :class:`PostgresUnavailable` saying what is missing."""
    if os.geteuid() != 0:
        raise PostgresUnavailable("the throwaway PostgreSQL needs root (it runs the server as the postgres user)")
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("runuser (util-linux) not found")
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(f"no {OS_USER!r} OS user (installed by the {PG_PACKAGE} package)") from None
    return find_bin_dir()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _as_postgres(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a command as the postgres OS user; raise RuntimeError with its output when it fails."""
    runuser = shutil.which("runuser") or "runuser"
    cmd = [runuser, "-u", OS_USER, "--", *map(str, argv)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _stop(bin_dir: Path, data_dir: Path) -> None:
    """Stop the server (immediate mode) if it runs; never raises."""
    if not (data_dir / "postmaster.pid").exists():
        return
    try:
        _as_postgres(bin_dir / "pg_ctl", "-D", data_dir, "-m", "immediate", "-w", "stop")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log.warning("could not stop the throwaway PostgreSQL in %s: %s", data_dir, exc)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL 15 with a ``relance`` role and database; stop and delete it on exit.

    Raises:
        PostgresUnavailable: not root, or ``runuser``, the ``postgres`` user or the binaries are missing.
        RuntimeError: initdb or the server start failed (the message has the tool output / server log).
    """
    import psycopg
    from psycopg import sql

    bin_dir = check_available()
    pg_user = pwd.getpwnam(OS_USER)
    base_dir = Path(tempfile.mkdtemp(prefix="relance-pg-"))  # mode 0700: private to its owner
    data_dir = base_dir / "data"
    started = False
    try:
        os.chown(base_dir, pg_user.pw_uid, pg_user.pw_gid)
        _as_postgres(
            bin_dir / "initdb", "-D", data_dir, "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
            "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        port = 0
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            options = (
                f"-p {port} -k {base_dir} -c listen_addresses={HOST} -c timezone=UTC "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                _as_postgres(
                    bin_dir / "pg_ctl", "-D", data_dir, "-l", base_dir / "server.log", "-o", options,
                    "-t", str(_TIMEOUT_S), "-w", "start",
                )  # fmt: skip
                started = True
                break
            except RuntimeError as exc:
                _stop(bin_dir, data_dir)
                if attempt == _START_ATTEMPTS:
                    raise RuntimeError(f"{exc}\nserver log:\n{_log_tail(base_dir / 'server.log')}") from exc
                log.warning("PostgreSQL did not start on port %d (attempt %d), retrying", port, attempt)
        server = PostgresServer(bin_dir, base_dir, port, ROLE, secrets.token_urlsafe(18), DATABASE)
        # connect check (pg_ctl -w already waited for "accepting connections") + role and database
        with psycopg.connect(**server.superuser_conninfo(), autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(server.password)
                )
            )
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))
        log.info("throwaway PostgreSQL %s running on %s:%d (%s)", PG_MAJOR, HOST, port, data_dir)
        yield server
    finally:
        if started:
            _stop(bin_dir, data_dir)
        shutil.rmtree(base_dir, ignore_errors=True)
