"""Find the database and the MQTT broker, or start them.

``vitalstream demo`` must run on a machine with no services. Each context manager first probes
the configured URL; when something answers it is used as is (``kind="external"``) and never
stopped. When nothing answers, an embedded server is started (``kind="embedded"``), handed out
while the ``with`` block runs, and stopped on exit: only what we started is stopped.

- PostgreSQL: the binaries of the ``pgserver`` wheel (PostgreSQL 16), run by
  :class:`EmbeddedPostgres` under ``data_dir/pg``. PostgreSQL refuses to run as root, so under
  root the cluster belongs to, and runs as, an unprivileged system user.
- MQTT: ``mosquitto`` when the binary is installed, else the pure-Python ``amqtt`` broker
  (``vitalstream.embedded_broker``), both as child processes on a free loopback port, so that
  :class:`BrokerProcess` can report whether they are alive and restart them.

Progress goes to the ``vitalstream.services`` logger, never to stdout (stdout belongs to the
command's output). See docs/embedded-services.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from vitals import BrokerAddress, VitalsError, parse_broker_url

_log = logging.getLogger("vitalstream.services")

DATABASE_ENV = "VITALSTREAM_DATABASE_URL"
BROKER_ENV = "VITALSTREAM_BROKER_URL"

PROBE_TIMEOUT_S = 2.0
"""How long a probe waits for an answer: long enough for a loaded LAN server, short enough
that a demo without services starts its own in a few seconds."""

START_TIMEOUT_S = 30.0
"""How long an embedded server may take to accept connections (initdb + start on a slow disk)."""

STOP_TIMEOUT_S = 10.0

EMBEDDED_PG_USER = "pgserver"
"""The system user that runs embedded PostgreSQL when we are root. The same name the
``pgserver`` wheel itself creates, so clusters made by either are interchangeable."""

_PG_SOCKET_PORT = 5432
"""Names the Unix socket (``.s.PGSQL.5432``); embedded PostgreSQL opens no TCP port."""

_UNIX_SOCKET_PATH_MAX = 107
"""``sun_path`` is 108 bytes on Linux, including the terminating NUL."""

_REDACTED = "***"

_MAINTENANCE_DATABASES = ("postgres", "template1")

MosquittoOrAmqtt = Literal["mosquitto", "amqtt"]


class ServiceError(RuntimeError):
    """A service cannot be found or started; the message says what to do about it."""


# --------------------------------------------------------------------------- handles


@dataclass(frozen=True)
class DatabaseHandle:
    """A PostgreSQL database ready to use.

    ``process`` is set only for an embedded server that this process started or adopted, so
    that a supervisor can check ``process.alive()`` and ``process.restart()`` it.
    """

    url: str
    """A psycopg conninfo string or URI that connects to the target database."""
    kind: Literal["external", "embedded"]
    server_version: str
    """E.g. ``"PostgreSQL 16.2"``."""
    timescaledb: bool
    """Whether the ``timescaledb`` extension is available (``pg_available_extensions``)."""
    process: EmbeddedPostgres | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BrokerHandle:
    """An MQTT broker ready to use.

    ``process`` is set only for an embedded broker that this process started; it can tell
    whether the broker is alive and restart it on the same port (clients keep the URL).
    """

    url: str
    """``mqtt://host:port`` (credentials of the configured URL are kept)."""
    host: str
    port: int
    kind: Literal["external", "embedded"]
    name: str
    """E.g. ``"mosquitto 2.0.11"`` or ``"amqtt 0.12.1"``; ``"unknown MQTT broker"`` when an
    external broker does not publish ``$SYS/broker/version``."""
    process: BrokerProcess | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------- PostgreSQL


def _redact(conninfo: str) -> str:
    """The conninfo without its password, for log lines and error messages."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable database URL>"
    if "password" in params:
        params["password"] = _REDACTED
    return make_conninfo("", **{k: str(v) for k, v in params.items() if v is not None})


def _with_dbname(conninfo: str, dbname: str, **extra: str | int) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(conninfo, dbname=dbname, **extra)


def _server_answered(error: psycopg.OperationalError) -> bool:
    """Whether a PostgreSQL server answered the connection attempt (and refused it).

    libpq reports errors from the server as ``FATAL: ...`` (wrong password, unknown role or
    database, no pg_hba.conf entry); refused or timed-out connections, unknown hosts and
    missing sockets have no server message. psycopg sets no SQLSTATE on connection errors,
    so the text is all there is.
    """
    return "FATAL:" in str(error)


def _refusal_advice(url: str, error: psycopg.OperationalError) -> ServiceError:
    """Turn a server-side refusal into an error that says what to do."""
    text = str(error)
    where = _redact(url)
    if "password" in text:
        what = "refused the password"
    elif "pg_hba.conf" in text:
        what = "does not accept connections from this host/user (pg_hba.conf)"
    elif "role" in text and "does not exist" in text:
        what = "does not know the user"
    else:
        what = "refused the connection"
    return ServiceError(
        f"PostgreSQL at {where} {what}: {text.strip()}\n"
        f"Set {DATABASE_ENV} to a URL with a user that may connect (and create databases), "
        "e.g. postgresql://user:password@host:5432/vitalstream, or unset it to use an embedded "
        "PostgreSQL."
    )


def _connect_maintenance(url: str) -> psycopg.Connection[tuple[object, ...]] | None:
    """Connect to a maintenance database of the server at ``url``.

    Returns ``None`` when no PostgreSQL answers; raises :class:`ServiceError` when one answers
    but refuses us.
    """
    last: psycopg.OperationalError | None = None
    for maintenance in _MAINTENANCE_DATABASES:
        try:
            return psycopg.connect(
                _with_dbname(url, maintenance, connect_timeout=int(PROBE_TIMEOUT_S)),
                autocommit=True,
            )
        except psycopg.OperationalError as error:
            if not _server_answered(error):
                _log.info("no PostgreSQL answers at %s (%s)", _redact(url), _first_line(error))
                return None
            if f'database "{maintenance}" does not exist' in str(error):
                last = error
                continue
            raise _refusal_advice(url, error) from error
    assert last is not None
    raise _refusal_advice(url, last) from last


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _ensure_database(maintenance: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """CREATE DATABASE ``name`` unless it exists (tolerating a concurrent creator)."""
    exists = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    if exists.fetchone() is not None:
        return
    _log.info("creating database %s", name)
    try:
        maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        pass  # another process created it between our check and our CREATE
    except psycopg.errors.InsufficientPrivilege as error:
        raise ServiceError(
            f"database {name!r} does not exist and this user may not create it: ask the "
            f"database administrator to run CREATE DATABASE {name}, or grant CREATEDB, or set "
            f"{DATABASE_ENV} to a user that may create databases."
        ) from error


def _describe(url: str, kind: Literal["external", "embedded"]) -> DatabaseHandle:
    """Connect to the target database and read what the rest of the stack needs to know."""
    with psycopg.connect(url, connect_timeout=int(PROBE_TIMEOUT_S)) as conn:
        version_row = conn.execute("SHOW server_version").fetchone()
        ts_row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        ).fetchone()
    assert version_row is not None and ts_row is not None
    # server_version may carry a distributor suffix: "15.20 (Debian 15.20-0+deb12u1)".
    version = str(version_row[0]).split()[0]
    return DatabaseHandle(
        url=url,
        kind=kind,
        server_version=f"PostgreSQL {version}",
        timescaledb=bool(ts_row[0]),
    )


# --------------------------------------------------------------------------- run-as user


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account an embedded server runs as when we are root."""

    uid: int
    gid: int
    name: str

    @classmethod
    def of(cls, entry: pwd.struct_passwd) -> _RunAs:
        return cls(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _is_root() -> bool:
    return os.geteuid() == 0


def _ensure_system_user(name: str) -> _RunAs:
    """Return ``name``, creating it as a system user if needed; ``nobody`` if that fails.

    A dedicated user keeps the cluster's files away from other services; ``nobody`` is the
    fallback for systems without ``useradd`` (e.g. busybox images).
    """
    with contextlib.suppress(KeyError):
        return _RunAs.of(pwd.getpwnam(name))
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    if useradd is not None:
        created = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode == 0:
            _log.info("created system user %s to run embedded PostgreSQL", name)
            return _RunAs.of(pwd.getpwnam(name))
        _log.warning("useradd %s failed (%s); using nobody", name, created.stderr.strip())
    return _RunAs.of(pwd.getpwnam("nobody"))


def _may(user: _RunAs, path: Path, bits: tuple[int, int, int]) -> bool:
    """Whether ``user`` has the (owner, group, other) permission ``bits`` on ``path``."""
    st = path.stat()
    if st.st_uid == user.uid:
        return bool(st.st_mode & bits[0])
    if st.st_gid in os.getgrouplist(user.name, user.gid):
        return bool(st.st_mode & bits[1])
    return bool(st.st_mode & bits[2])


_SEARCH = (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)


def _unreachable(path: Path, user: _RunAs) -> Path | None:
    """The first directory on the way to ``path`` that ``user`` may not enter, if any."""
    for directory in reversed([path, *path.parents]):
        if not _may(user, directory, _SEARCH):
            return directory
    return None


def _require_reachable(path: Path, user: _RunAs, what: str, *, own_dir: Path) -> None:
    """Make sure ``user`` can reach ``path``, or fail with advice.

    ``own_dir`` is vitalstream's data directory: if it alone blocks the way (``mkdtemp`` makes
    0700 directories), it gets o+x (enter, not list). Other directories are not ours: we fail
    rather than widen them. (pgserver's own root mode chmods every parent of its data
    directory, ``/root`` included, to o+rx; we will not do that behind a user's back.)
    """
    blocked = _unreachable(path, user)
    if blocked is not None and blocked == own_dir:
        _log.info(
            "allowing %s to enter %s (chmod o+x) so it can reach %s", user.name, blocked, path
        )
        blocked.chmod(blocked.stat().st_mode | stat.S_IXOTH)
        blocked = _unreachable(path, user)
    if blocked is not None:
        raise ServiceError(
            f"{what} runs as the unprivileged user {user.name!r} (it refuses to run as root) "
            f"and cannot enter {blocked} on the way to {path}. Use a data directory that "
            f"others may traverse (e.g. --data-dir /var/tmp/vitalstream), run vitalstream as a "
            f"normal user, or allow traversal with: chmod o+x {blocked}"
        )


def _as_user(user: _RunAs | None) -> tuple[int | None, int | None, list[int] | None]:
    """``(user, group, extra_groups)`` for Popen: run as ``user``, without root's groups."""
    if user is None:
        return None, None, None
    return user.uid, user.gid, []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    return True


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- embedded PG


def _pgserver_bin_dir() -> Path:
    """The PostgreSQL binaries shipped in the ``pgserver`` wheel.

    Found without importing ``pgserver``: its import creates a lock file in the XDG runtime
    directory and warns when ``XDG_RUNTIME_DIR`` is unset, and we need only the binaries.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise ServiceError(
            "no PostgreSQL answers and the pgserver package (embedded PostgreSQL) is not "
            f"installed: pip install 'pgserver>=0.1.4', or set {DATABASE_ENV} to a running "
            "PostgreSQL."
        )
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise ServiceError(f"the pgserver wheel has no PostgreSQL binaries in {bin_dir}")
    return bin_dir


class EmbeddedPostgres:
    """PostgreSQL from the ``pgserver`` wheel, cluster in ``data_dir/pg``, Unix socket only.

    We drive the wheel's ``initdb`` and ``postgres`` ourselves instead of calling
    ``pgserver.get_server`` because, as root, get_server chmods every parent of the data
    directory and the wheel's files to o+rx, and its cross-process bookkeeping (a pid list in
    the data dir, freed in ``atexit``) keeps a crashed run's pid forever, after which no later
    run stops the server. Here the server is our child process, which a supervisor can check
    and restart.

    Ownership: ``data_dir/pg.owner`` holds the pid of the vitalstream process that runs the
    server. A server found running whose owner is still alive is shared and left running on
    exit; one whose owner died (kill -9) is adopted and stopped on exit.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pg"
        self.log_path = self.data_dir / "pg.log"
        self._owner_file = self.data_dir / "pg.owner"
        self._bin_dir = _pgserver_bin_dir()
        self._child: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._owned = False
        self._run_as: _RunAs | None = None
        self.socket_dir: Path = self.pgdata
        self.port = _PG_SOCKET_PORT

    # -- what callers use

    @property
    def owned(self) -> bool:
        """Whether :meth:`stop` stops the server (we started or adopted it)."""
        return self._owned

    @property
    def pid(self) -> int | None:
        """The postmaster's pid."""
        return self._pid

    def url(self, dbname: str = "postgres") -> str:
        """A URI for the Unix socket (libpq takes the socket directory as ``host``)."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://postgres@/{quote(dbname, safe='')}?host={host}&port={self.port}"

    def alive(self) -> bool:
        """Whether the postmaster still runs."""
        if self._child is not None:
            return self._child.poll() is None
        return self._pid is not None and _pid_alive(self._pid)

    def start(self) -> None:
        """Reuse a running server on this cluster or start one; return when it accepts
        connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run_as = self._choose_run_as()
        if self._run_as is not None:
            what = "Embedded PostgreSQL"
            _require_reachable(self._bin_dir, self._run_as, what, own_dir=self.data_dir)
            _require_reachable(self.data_dir, self._run_as, what, own_dir=self.data_dir)
        if self._reuse_running():
            return
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        # After a kill -9 the old backends may hold the shared memory for a moment.
        for attempt in range(3):
            try:
                self._spawn()
                break
            except ServiceError:
                if attempt == 2:
                    raise
                time.sleep(1.0)
        self._owner_file.write_text(f"{os.getpid()}\n")
        self._owned = True

    def stop(self) -> None:
        """Stop the server if we own it: fast shutdown (SIGINT), then immediate (SIGQUIT),
        then SIGKILL."""
        if not self._owned:
            return
        pid = self._pid
        if pid is not None and self.alive():
            _log.info("stopping embedded PostgreSQL (pid %d)", pid)
            for signum, wait_s in (
                (signal.SIGINT, STOP_TIMEOUT_S),
                (signal.SIGQUIT, 5.0),
                (signal.SIGKILL, 5.0),
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
                if self._wait_dead(wait_s):
                    break
        elif self._child is not None:
            self._child.poll()  # reap a server that died on its own
        with contextlib.suppress(FileNotFoundError):
            if self._owner_file.read_text().strip() == str(os.getpid()):
                self._owner_file.unlink()
        self._owned = False
        self._child = None

    def restart(self) -> None:
        """Stop (or reap) the server and start it again on the same cluster and socket, so
        URLs handed out before stay valid."""
        _log.info("restarting embedded PostgreSQL")
        self._owned = True  # a server we started that died is still ours to restart
        self.stop()
        self.start()

    # -- internals

    def _wait_dead(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.1)
        return not self.alive()

    def _choose_run_as(self) -> _RunAs | None:
        if not _is_root():
            return None
        if (self.pgdata / "PG_VERSION").exists():
            st = self.pgdata.stat()
            if st.st_uid == 0:
                raise ServiceError(
                    f"the embedded PostgreSQL cluster {self.pgdata} belongs to root, and "
                    "PostgreSQL refuses to run as root: delete it (it is recreated) or chown it "
                    f"to {EMBEDDED_PG_USER}."
                )
            try:
                return _RunAs.of(pwd.getpwuid(st.st_uid))
            except KeyError:
                return _RunAs(st.st_uid, st.st_gid, str(st.st_uid))
        return _ensure_system_user(EMBEDDED_PG_USER)

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.uid, self._run_as.gid)

    def _reuse_running(self) -> bool:
        """Attach to a postmaster already running on this cluster (another demo, or one
        orphaned by a crash). Its socket directory comes from ``postmaster.pid``."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return False
        if len(lines) < 5 or not lines[0].strip().isdigit():
            return False
        pid = int(lines[0])
        if not _pid_alive(pid):
            return False
        self._pid = pid
        self.port = int(lines[3]) if lines[3].strip().isdigit() else _PG_SOCKET_PORT
        self.socket_dir = Path(lines[4].strip()) if lines[4].strip() else self.pgdata
        try:
            psycopg.connect(self.url(), connect_timeout=int(PROBE_TIMEOUT_S)).close()
        except psycopg.OperationalError:
            # Starting up or shutting down, or not ours; let postgres itself sort it out.
            return False
        owner = self._owner_pid()
        self._owned = owner is None or not _pid_alive(owner)
        if self._owned:
            self._owner_file.write_text(f"{os.getpid()}\n")
            _log.info("adopted embedded PostgreSQL (pid %d) left running by an earlier run", pid)
        else:
            _log.info("sharing embedded PostgreSQL (pid %d) run by process %s", pid, owner)
        return True

    def _owner_pid(self) -> int | None:
        try:
            text = self._owner_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def _prepare_dirs(self) -> None:
        if not self.pgdata.exists():
            self.pgdata.mkdir(mode=0o700)
            self._chown(self.pgdata)
        self.socket_dir = self.pgdata
        self.port = _PG_SOCKET_PORT
        if len(str(self.socket_dir / f".s.PGSQL.{self.port}")) > _UNIX_SOCKET_PATH_MAX:
            # The socket path does not fit in sun_path: use a short per-cluster directory.
            digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
            self.socket_dir = Path(tempfile.gettempdir()) / f"vitalstream-pg-{digest}"
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(self.socket_dir)
            expected = self._run_as.uid if self._run_as is not None else os.geteuid()
            if self.socket_dir.stat().st_uid != expected:
                raise ServiceError(
                    f"{self.socket_dir} belongs to another user; remove it or choose a shorter "
                    "data directory."
                )

    def _initdb(self) -> None:
        uid, gid, groups = _as_user(self._run_as)
        _log.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                str(self._bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.pgdata,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"initdb failed for {self.pgdata}:\n{result.stderr.strip()}\n"
                f"Delete {self.pgdata} and retry, or set {DATABASE_ENV} to a running PostgreSQL."
            )

    def _spawn(self) -> None:
        uid, gid, groups = _as_user(self._run_as)
        _log.info("starting embedded PostgreSQL on socket %s", self.socket_dir)
        with self.log_path.open("ab") as log:
            # Own session: Ctrl-C in the terminal reaches the demo, which then stops the
            # server in order, instead of killing it under the ingest service.
            self._child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    str(self._bin_dir / "postgres"),
                    "-D",
                    str(self.pgdata),
                    "-h",
                    "",
                    "-k",
                    str(self.socket_dir),
                    "-p",
                    str(self.port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.pgdata,
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        self._pid = self._child.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                raise ServiceError(
                    f"embedded PostgreSQL exited with status {self._child.returncode}; "
                    f"log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            try:
                psycopg.connect(self.url(), connect_timeout=1).close()
            except psycopg.OperationalError:
                time.sleep(0.2)
                continue
            _log.info("embedded PostgreSQL ready (pid %d)", self._pid)
            return
        self._owned = True
        self.stop()
        raise ServiceError(
            f"embedded PostgreSQL did not accept connections within {START_TIMEOUT_S:.0f} s; "
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )


@contextmanager
def database(
    url: str, *, data_dir: Path, database_name: str | None = None
) -> Iterator[DatabaseHandle]:
    """Yield a handle on ``database_name`` at the PostgreSQL at ``url``, or on an embedded one.

    ``url`` names the server and credentials (conninfo or URI). The database is
    ``database_name`` when given, else the URL's own database name, else ``vitalstream``;
    it is created when missing. When nothing answers at
    ``url``, embedded PostgreSQL runs from ``data_dir/pg`` (kept between runs) and is stopped
    on exit if this call started it.
    """
    if database_name is None:
        database_name = str(conninfo_to_dict(url).get("dbname") or "vitalstream")
    maintenance = _connect_maintenance(url)
    if maintenance is not None:
        with maintenance:
            _ensure_database(maintenance, database_name)
        handle = _describe(_with_dbname(url, database_name), "external")
        _log.info("using %s at %s", handle.server_version, _redact(handle.url))
        yield handle
        return

    server = EmbeddedPostgres(data_dir)
    server.start()
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            _ensure_database(admin, database_name)
        described = _describe(server.url(database_name), "embedded")
        handle = replace(described, process=server)
        _log.info("using embedded %s at %s", handle.server_version, handle.url)
        yield handle
    finally:
        server.stop()


# --------------------------------------------------------------------------- MQTT


def _parse_mqtt_url(url: str) -> BrokerAddress:
    try:
        return parse_broker_url(url)
    except VitalsError as error:
        raise ServiceError(f"{error.detail}: fix {BROKER_ENV}.") from None


@dataclass(frozen=True)
class _Probe:
    answered: bool
    refusal: str | None = None
    version: str | None = None


def _probe_mqtt(
    target: BrokerAddress, timeout_s: float = PROBE_TIMEOUT_S, *, read_version: bool = True
) -> _Probe:
    """CONNECT like a real client; read ``$SYS/broker/version`` if the broker publishes it.

    A TCP connect alone would take any listener for a broker; the CONNACK proves MQTT.
    ``read_version=False`` skips the subscription: amqtt 0.12 sends every connecting client
    the retained messages matching *any* filter ever subscribed (see
    docs/embedded-services.md), so probing our own amqtt must not subscribe to anything.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"vitalstream-probe-{secrets.token_hex(4)}",
        clean_session=True,
    )
    client.connect_timeout = timeout_s
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()
    seen: dict[str, object] = {}

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        seen["connack"] = reason

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        seen["version"] = bytes(message.payload).decode("utf-8", "replace")

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(target.host, target.port, keepalive=10)
    except (OSError, ValueError) as error:
        _log.debug("no MQTT broker at %s:%d: %s", target.host, target.port, error)
        return _Probe(answered=False)
    try:
        deadline = time.monotonic() + timeout_s
        while "connack" not in seen and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        reason = seen.get("connack")
        if reason is None:
            _log.warning(
                "%s:%d accepts TCP but does not answer MQTT CONNECT", target.host, target.port
            )
            return _Probe(answered=False)
        if getattr(reason, "is_failure", False):
            return _Probe(answered=True, refusal=str(reason))
        if not read_version:
            return _Probe(answered=True)
        client.subscribe("$SYS/broker/version", qos=0)
        deadline = time.monotonic() + 1.0  # retained: arrives at once when published at all
        while "version" not in seen and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        version = seen.get("version")
        return _Probe(answered=True, version=version if isinstance(version, str) else None)
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop(timeout=0.05)


def _broker_name(version: str | None) -> str:
    """``"mosquitto version 2.0.11"`` → ``"mosquitto 2.0.11"``; ``"aMQTT version 0.12.1"`` →
    ``"amqtt 0.12.1"``."""
    if not version:
        return "unknown MQTT broker"
    match = re.fullmatch(r"\s*(\S+)\s+version\s+(\S+)\s*", version)
    return f"{match[1].lower()} {match[2]}" if match else version.strip()


def _find_mosquitto() -> Path | None:
    """The mosquitto binary; Debian installs it in /usr/sbin, often not on a user's PATH."""
    found = shutil.which("mosquitto") or shutil.which(
        "mosquitto", path="/usr/sbin:/usr/local/sbin:/opt/homebrew/sbin"
    )
    return Path(found) if found else None


def _free_port(host: str) -> int:
    """A port free right now. Another process may take it before the broker binds it; the
    caller retries with a new one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


class BrokerProcess:
    """An embedded broker (mosquitto or amqtt) that we run as a child process.

    It always listens on the same loopback port, so a restart keeps every client's URL valid.
    Mosquitto keeps sessions and queued QoS>0 messages in ``data_dir/mosquitto/`` (snapshot
    every 5 s and at a clean stop); amqtt keeps them in memory only.
    """

    def __init__(
        self,
        implementation: MosquittoOrAmqtt,
        *,
        host: str,
        port: int,
        data_dir: Path,
        mosquitto: Path | None = None,
    ) -> None:
        self.implementation: MosquittoOrAmqtt = implementation
        self.host = host
        self.port = port
        self.workdir = data_dir.resolve() / implementation
        self.log_path = self.workdir / f"{implementation}.log"
        self._mosquitto = mosquitto
        self._child: subprocess.Popen[bytes] | None = None
        self.name = "unknown MQTT broker"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        return self._child.pid if self._child is not None else None

    def alive(self) -> bool:
        """Whether the broker process still runs."""
        return self._child is not None and self._child.poll() is None

    def start(self) -> None:
        """Start the broker and return once it answers an MQTT CONNECT."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = self._mosquitto_argv() if self.implementation == "mosquitto" else self._amqtt_argv()
        _log.info("starting embedded %s on %s:%d", self.implementation, self.host, self.port)
        with self.log_path.open("ab") as log:
            self._child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                start_new_session=True,  # see EmbeddedPostgres._spawn
            )
        target = BrokerAddress(self.host, self.port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                raise ServiceError(
                    f"embedded {self.implementation} exited with status "
                    f"{self._child.returncode}; log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            probe = _probe_mqtt(
                target, timeout_s=1.0, read_version=self.implementation == "mosquitto"
            )
            if probe.answered and probe.refusal is None:
                self.name = self._name(probe.version)
                _log.info(
                    "embedded %s ready on %s:%d (pid %d)",
                    self.name,
                    self.host,
                    self.port,
                    self._child.pid,
                )
                return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(
            f"embedded {self.implementation} did not answer MQTT within {START_TIMEOUT_S:.0f} s;"
            f" log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """SIGTERM (both brokers save state and exit), then SIGKILL."""
        child = self._child
        if child is None:
            return
        if child.poll() is None:
            _log.info("stopping embedded %s (pid %d)", self.implementation, child.pid)
            child.terminate()
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5.0)
        self._child = None

    def restart(self) -> None:
        """Stop the broker if it runs (or reap it if it died) and start it on the same port."""
        _log.info("restarting embedded %s on port %d", self.implementation, self.port)
        self.stop()
        # After a crash the kernel frees the port at once; after a clean stop both brokers set
        # SO_REUSEADDR. Retry briefly anyway in case the port is still settling.
        for attempt in range(5):
            try:
                self.start()
                return
            except ServiceError:
                if attempt == 4:
                    raise
                time.sleep(0.5)

    def _name(self, version: str | None) -> str:
        if self.implementation == "amqtt":
            return f"amqtt {_package_version('amqtt')}"
        return _broker_name(version) if version else "mosquitto"

    def _mosquitto_argv(self) -> list[str]:
        assert self._mosquitto is not None
        persistence = self.workdir / "persistence"
        persistence.mkdir(exist_ok=True)
        lines = [
            "# Written by vitalstream.services on every start; edits are overwritten.",
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {persistence}/",
            "persistence_file mosquitto.db",
            # Mosquitto only snapshots its state; keep the window small for the demo.
            "autosave_interval 5",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if _is_root():
            # Mosquitto drops root to this user after binding; it must own the persistence.
            try:
                user = _RunAs.of(pwd.getpwnam("mosquitto"))
            except KeyError:
                user = _RunAs.of(pwd.getpwnam("nobody"))
            _require_reachable(persistence, user, "Embedded mosquitto", own_dir=self.workdir.parent)
            os.chown(persistence, user.uid, user.gid)
            for leftover in persistence.iterdir():
                os.chown(leftover, user.uid, user.gid)
            lines.append(f"user {user.name}")
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return [str(self._mosquitto), "-c", str(config)]

    def _amqtt_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "vitalstream.embedded_broker",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]


def _choose_broker(
    prefer: Literal["auto", "mosquitto", "amqtt"],
) -> tuple[MosquittoOrAmqtt, Path | None]:
    mosquitto = _find_mosquitto()
    has_amqtt = importlib.util.find_spec("amqtt") is not None
    if prefer == "mosquitto" and mosquitto is None:
        raise ServiceError(
            "prefer='mosquitto' but no mosquitto binary was found: install it "
            "(apt install mosquitto) or let vitalstream fall back to amqtt."
        )
    if prefer == "amqtt" and not has_amqtt:
        raise ServiceError("prefer='amqtt' but amqtt is not installed: pip install amqtt")
    if prefer != "amqtt" and mosquitto is not None:
        return "mosquitto", mosquitto
    if has_amqtt:
        return "amqtt", None
    raise ServiceError(
        f"no MQTT broker answers and none can be started: set {BROKER_ENV} to a running "
        "broker, install mosquitto (apt install mosquitto), or pip install amqtt."
    )


@contextmanager
def broker(
    url: str, *, data_dir: Path, prefer: Literal["auto", "mosquitto", "amqtt"] = "auto"
) -> Iterator[BrokerHandle]:
    """Yield a handle on the MQTT broker at ``url``, or on an embedded one.

    When nothing answers an MQTT CONNECT at ``url``, start mosquitto (if installed and
    ``prefer`` allows) or amqtt on a free port of 127.0.0.1, and stop it on exit.
    """
    target = _parse_mqtt_url(url)
    probe = _probe_mqtt(target)
    if probe.answered:
        if probe.refusal is not None:
            raise ServiceError(
                f"the MQTT broker at {target.host}:{target.port} refused the connection "
                f"({probe.refusal}): set {BROKER_ENV} to mqtt://user:password@host:port with "
                "credentials it accepts, or unset it to use an embedded broker."
            )
        handle = BrokerHandle(
            url=url,
            host=target.host,
            port=target.port,
            kind="external",
            name=_broker_name(probe.version),
        )
        _log.info("using %s at %s:%d", handle.name, handle.host, handle.port)
        yield handle
        return

    implementation, mosquitto = _choose_broker(prefer)
    host = "127.0.0.1"
    _log.info(
        "no MQTT broker answers at %s:%d; starting %s", target.host, target.port, implementation
    )
    process: BrokerProcess | None = None
    for attempt in range(3):  # a free port can be taken before the broker binds it
        candidate = BrokerProcess(
            implementation, host=host, port=_free_port(host), data_dir=data_dir, mosquitto=mosquitto
        )
        try:
            candidate.start()
        except ServiceError:
            if attempt == 2:
                raise
            continue
        process = candidate
        break
    assert process is not None
    try:
        yield BrokerHandle(
            url=f"mqtt://{host}:{process.port}",
            host=host,
            port=process.port,
            kind="embedded",
            name=process.name,
            process=process,
        )
    finally:
        process.stop()


def restart_broker(handle: BrokerHandle) -> None:
    """Restart an embedded broker on its port; external brokers are not ours to restart."""
    if handle.process is None:
        raise ServiceError(
            f"{handle.name} at {handle.host}:{handle.port} is external: vitalstream did not "
            "start it and does not restart it."
        )
    handle.process.restart()


__all__ = [
    "BROKER_ENV",
    "DATABASE_ENV",
    "BrokerHandle",
    "BrokerProcess",
    "DatabaseHandle",
    "EmbeddedPostgres",
    "ServiceError",
    "broker",
    "database",
    "restart_broker",
]
