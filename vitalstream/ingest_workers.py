"""``vitalstream ingest run --workers N``: N single-worker processes in one shared group.

Python runs one thread of Python at a time, so one ingest process uses about one core; the
database and the broker use the rest. N processes in an MQTT shared subscription split the
gateways' messages (docs/ingest.md, "Parallel workers"). Storage stays exactly-once (the
unique key) and rules stay whole (one rules consumer for all workers), so this is the
deployment for a machine with several cores.

This process supervises and judges: it starts the workers, says it is ready when they all
are, restarts one that dies, and stops them on SIGTERM/SIGINT; and it runs the rules
consumer itself (the workers run none), so the rules get a process of their own instead of
weighing on one of the workers. A worker stops by itself when
its supervisor is gone (even after SIGKILL), finishing the batch in hand, so a restarted
supervisor never meets an orphan holding its client id.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ingest_service import IngestSettings
from ingest_service.rule_consumer import RuleConsumer
from vitalstream import services

log = logging.getLogger("vitalstream.ingest")

#: Set in a worker's environment: the supervisor's PID, which the worker outlives by < 1 s.
SUPERVISOR_ENV = "VITALSTREAM_INGEST_SUPERVISOR"
_READY_TIMEOUT_S = 60.0


def start_ingest(
    env: dict[str, str], ready: Path, *options: str, log_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m vitalstream ingest run --ready-file READY OPTIONS`` with ``env``; it
    creates ``ready`` once subscribed. Output goes to ``log_file`` (appended) or ours."""
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "vitalstream", "ingest", "run", "--ready-file", str(ready)]
    if log_file is None:
        return subprocess.Popen([*command, *options], env=env)  # noqa: S603 - our own module
    with log_file.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*command, *options], env=env, stdout=output, stderr=output
        )


def await_ready(
    proc: subprocess.Popen[bytes],
    ready: Path,
    timeout_s: float,
    stop: threading.Event | None = None,
) -> bool:
    """True once ``proc`` created ``ready``; False if it exited, ``timeout_s`` passed or
    ``stop`` was set first."""
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        if stop is not None and stop.is_set():
            return False
        time.sleep(0.05)
    return True


def supervise(
    settings: IngestSettings,
    workers: int,
    ready_file: Path | None,
    log_level: str,
    stop: threading.Event,
) -> None:
    """Run ``workers`` worker processes until ``stop``; raises ServiceError if one cannot
    start."""
    workdir = Path(tempfile.mkdtemp(prefix="vs-ingest-workers-"))
    env = dict(os.environ) | {
        "VITALSTREAM_DATABASE_URL": settings.database_url,
        "VITALSTREAM_BROKER_URL": settings.broker_url,
        "VITALSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "VITALSTREAM_SHARED_GROUP": settings.shared_group or "ingest",
        "VITALSTREAM_RULES_CONSUMER": "false",
        SUPERVISOR_ENV: str(os.getpid()),
    }

    def spawn(n: int) -> subprocess.Popen[bytes]:
        ready = workdir / f"worker-{n}.ready"
        proc = start_ingest(
            env | {"VITALSTREAM_INGEST_CLIENT_ID": f"{settings.ingest_client_id}-{n}"},
            ready,
            "--log-level",
            log_level,
        )
        if not await_ready(proc, ready, _READY_TIMEOUT_S, stop):
            proc.kill()
            raise services.ServiceError(
                f"ingest worker {n} did not start (exit {proc.poll()}); run "
                "`vitalstream ingest run` without --workers to see why"
            )
        return proc

    procs: list[subprocess.Popen[bytes]] = []
    rules = RuleConsumer(settings)
    judging = threading.Thread(target=rules.run_until, args=(stop,), name="rules", daemon=True)
    try:
        for n in range(workers):
            procs.append(spawn(n))
        judging.start()
        log.info("%d ingest workers running in group %s", workers, env["VITALSTREAM_SHARED_GROUP"])
        if ready_file is not None:
            ready_file.touch()
        while not stop.wait(0.5):
            for n, proc in enumerate(procs):
                if proc.poll() is not None:
                    log.error("ingest worker %d exited with %s; restarting it", n, proc.returncode)
                    procs[n] = spawn(n)
    finally:
        stop.set()
        if judging.is_alive():
            judging.join(30)  # it checkpoints the rule state on its way out
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def follow_supervisor(stop: threading.Event) -> None:
    """In a worker started by :func:`supervise`: set ``stop`` once the supervisor is gone."""
    parent = os.environ.get(SUPERVISOR_ENV)
    if not parent:
        return

    def watch() -> None:
        while not stop.wait(0.5):
            if os.getppid() != int(parent):
                log.warning("the ingest supervisor is gone; stopping this worker")
                stop.set()

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
