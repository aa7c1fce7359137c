"""``vitalstream demo``: the whole pipeline on one machine, with what is missing started for it.

Wiring only: services (database, broker) come from :mod:`vitalstream.services`, the ingest
service runs as a child process (``vitalstream ingest run``) under a small supervisor that
restarts it if it dies, and one edge agent per simulated gateway runs in this process. The
summary is computed from the database, never from counters that could flatter it: a reading
accepted into an edge outbox is "lost" unless its (device, metric, time) key is found in
``readings`` or ``dead_letters``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from edge_agent import EdgeAgent
from edge_agent.simulator import (
    HOME_CONDITIONS,
    SimPatient,
    TimeWarpSource,
    simulate_ambulance,
    simulate_home,
)
from ingest_service import migrate
from vitals import Reading, gateway_topic, now_utc, parse_broker_url
from vitals.broker import forget_session
from vitalstream import services
from vitalstream.ingest_workers import start_ingest

log = logging.getLogger("vitalstream.demo")

#: Home patients live 24 simulated hours per wall-clock minute (a 20 s demo covers 8 hours).
HOME_SPEED = 1440.0
#: The ambulance transport (40 simulated minutes) is spread over the whole demo.
AMBULANCE_MINUTES = 40


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo runs against and for how long."""

    duration_s: float
    patients: int
    database_url: str
    broker_url: str
    topic_prefix: str
    data_dir: Path
    drain_timeout_s: float = 90.0
    seed: int = 20261125
    embedded_broker: Literal["auto", "mosquitto", "amqtt"] = "auto"


Progress = Callable[[float, int, int], None]
"""Called about 10 times a second with (fraction done, readings accepted, readings confirmed)."""


class IngestSupervisor:
    """Runs ``vitalstream ingest run`` as a child and restarts it whenever it dies."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self._env = env
        self._ready = workdir / "ingest.ready"
        self._log = workdir / "ingest.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self.restarts = 0

    def start(self, ready_timeout: float = 60.0, attempts: int = 3) -> None:
        """Start the child and wait until it is subscribed.

        A child that dies while starting (killed by an operator, or a transient failure) is
        started again, up to ``attempts`` times; only then does the demo give up.
        """
        self._spawn()
        deadline = time.monotonic() + ready_timeout
        while not self._ready.exists():
            died = self._proc is not None and self._proc.poll() is not None
            if died and attempts > 1:
                attempts -= 1
                self.restarts += 1
                log.warning("the ingest service died while starting; starting it again")
                self._spawn()
                continue
            if time.monotonic() > deadline or died:
                tail = self._log.read_text(errors="replace").strip().splitlines()[-15:]
                raise services.ServiceError(
                    "the ingest service did not start; its last log lines:\n" + "\n".join(tail)
                )
            time.sleep(0.05)
        self._watch = threading.Thread(
            target=self._supervise, name="ingest-supervisor", daemon=True
        )
        self._watch.start()

    def stop(self) -> None:
        """Ask the child to finish its batch and exit (SIGTERM), then wait."""
        self._stopping.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def kill(self) -> bool:
        """SIGKILL the running child (chaos testing); the supervisor restarts it."""
        if self._proc is None or self._proc.poll() is not None:
            return False
        os.kill(self._proc.pid, signal.SIGKILL)
        return True

    def _spawn(self) -> None:
        self._proc = start_ingest(self._env, self._ready, log_file=self._log)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                if self._stopping.is_set():
                    return
                log.warning("the ingest service exited (code %s); restarting it", code)
                self.restarts += 1
                self._spawn()


class _BrokerWatch:
    """Restarts an embedded broker this demo started if it dies (an external one is left be)."""

    def __init__(self, handle: services.BrokerHandle) -> None:
        self._process = handle.process
        self._stop = threading.Event()
        self.restarts = 0
        self._thread = threading.Thread(target=self._watch, name="broker-watch", daemon=True)
        if self._process is not None:
            self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()

    def _watch(self) -> None:
        process = self._process
        while process is not None and not self._stop.wait(0.5):
            if not process.alive():
                log.warning("the embedded broker died; restarting it on the same port")
                self.restarts += 1
                process.restart()


def _patients(run: str, count: int) -> list[SimPatient]:
    homes = [
        SimPatient(
            subject=f"sim-{run}-p{i + 1:02d}",
            gateway=f"sim-{run}-home{i + 1:02d}",
            condition=HOME_CONDITIONS[i % len(HOME_CONDITIONS)],
        )
        for i in range(count)
    ]
    ambulance = SimPatient(
        subject=f"sim-{run}-amb-pt",
        gateway=f"sim-{run}-amb1",
        condition="ambulance",
        incident=f"sim-{run}-inc1",
    )
    return [*homes, ambulance]


#: What a family doctor (or the ER) would assign to each simulated condition: packs,
#: per-patient targets and disabled rules (docs/rules.md). The COPD patient has the 88-92 %
#: target of BTS 2017. Stale-data rules compare the newest reading with the wall clock; in a
#: time-warped demo readings are hours "old" when they arrive, so they are off there.
CONDITION_RULES: dict[str, tuple[tuple[str, ...], dict[str, float], tuple[str, ...]]] = {
    "hypertension": (("core", "hypertension"), {}, ()),
    "diabetes": (("core", "diabetes"), {}, ()),
    "copd": (("core", "copd"), {"spo2_target_low": 88.0, "spo2_target_high": 92.0}, ()),
    "heart_failure": (("core", "heart_failure"), {}, ()),
    "elderly": (("core", "elderly"), {}, ("wearable_silent",)),
    "ambulance": (("core", "emergency"), {}, ()),
}


def assign_rule_packs(
    conn: psycopg.Connection[tuple[object, ...]], patients: list[SimPatient]
) -> None:
    """Write each simulated patient's rule settings, as their doctor would."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO subject_rules (subject, packs, parameters, disabled_rules, updated_by,"
            " reason) VALUES (%s, %s, %s, %s, 'vitalstream demo', %s)"
            " ON CONFLICT (subject) DO NOTHING",
            [
                (
                    p.subject,
                    list(CONDITION_RULES[p.condition][0]),
                    Jsonb(CONDITION_RULES[p.condition][1]),
                    list(CONDITION_RULES[p.condition][2]),
                    f"simulated {p.condition} patient",
                )
                for p in patients
            ],
        )
    conn.commit()


def _source(
    readings: Sequence[Reading], options: DemoOptions, speed: float, clock: Callable[[], float]
) -> tuple[TimeWarpSource, Callable[[], list[Reading]]]:
    start = min(r.time for r in readings) if readings else now_utc()
    warp = TimeWarpSource(readings, start - timedelta(seconds=1), speed)

    def due() -> list[Reading]:
        elapsed = clock()
        if elapsed >= options.duration_s:
            return warp.due(float("inf"))
        return warp.due(elapsed)

    return warp, due


@dataclass(frozen=True, slots=True)
class Targets:
    """What a disruption (``vitalstream chaos``) may kill while the demo runs."""

    ingest: IngestSupervisor
    broker: services.BrokerHandle

    def kill_ingest(self) -> bool:
        """SIGKILL the ingest service (its supervisor restarts it)."""
        return self.ingest.kill()

    def kill_broker(self) -> bool:
        """SIGKILL an embedded broker (the demo's watch restarts it on the same port)."""
        process = self.broker.process
        if process is None or process.pid is None or not process.alive():
            return False
        os.kill(process.pid, signal.SIGKILL)
        return True


Disruption = Callable[[Targets, threading.Event], None]
"""Runs in its own thread while the agents publish; must return when the event is set."""


def run_demo(
    options: DemoOptions, progress: Progress | None = None, disrupt: Disruption | None = None
) -> dict[str, Any]:
    """Run the demo (optionally under a disruption) and return the CONTRACTS.md summary."""
    run = uuid.uuid4().hex[:8]
    workdir = options.data_dir / f"demo-{run}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with (
            services.database(options.database_url, data_dir=options.data_dir) as db,
            services.broker(
                options.broker_url, data_dir=options.data_dir, prefer=options.embedded_broker
            ) as broker,
        ):
            patients = _patients(run, options.patients)
            with psycopg.connect(db.url) as conn:
                database_kind = migrate(conn)
                assign_rule_packs(conn, patients)
            env = dict(os.environ)
            env |= {
                "VITALSTREAM_DATABASE_URL": db.url,
                "VITALSTREAM_BROKER_URL": broker.url,
                "VITALSTREAM_TOPIC_PREFIX": options.topic_prefix,
                "VITALSTREAM_INGEST_CLIENT_ID": f"vs-ingest-demo-{run}",
            }
            ingest = IngestSupervisor(env, workdir)
            ingest.start()
            broker_watch = _BrokerWatch(broker)
            done = threading.Event()
            chaos = threading.Thread(
                target=disrupt or (lambda targets, stop: None),
                args=(Targets(ingest, broker), done),
                name="disruption",
                daemon=True,
            )
            chaos.start()
            try:
                agents = _run_agents(options, patients, broker.url, workdir, progress)
            finally:
                done.set()
                chaos.join(30)
                broker_watch.stop()
                ingest.stop()
            summary = _summarise(db.url, agents)
            _forget_demo_sessions(broker.url, options.topic_prefix, agents, f"vs-ingest-demo-{run}")
            summary |= {
                "database": database_kind,
                "broker": broker.name,
                "ingest_restarts": ingest.restarts,
                "broker_restarts": broker_watch.restarts,
            }
            return summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_agents(
    options: DemoOptions,
    patients: list[SimPatient],
    broker_url: str,
    workdir: Path,
    progress: Progress | None,
) -> list[EdgeAgent]:
    broker = parse_broker_url(broker_url)
    now = now_utc()
    home_window = timedelta(seconds=options.duration_s * HOME_SPEED)
    ambulance_window = timedelta(minutes=AMBULANCE_MINUTES)
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    agents: list[EdgeAgent] = []
    warps: list[TimeWarpSource] = []
    for index, patient in enumerate(patients):
        if patient.condition == "ambulance":
            readings = simulate_ambulance(
                patient, now - ambulance_window, now, options.seed + index
            )
            speed = ambulance_window.total_seconds() / options.duration_s
        else:
            readings = simulate_home(patient, now - home_window, now, options.seed + index)
            speed = HOME_SPEED
        warp, due = _source(readings, options, speed, clock)
        warps.append(warp)
        agents.append(
            EdgeAgent(
                patient.gateway,
                workdir / f"{patient.gateway}.outbox",
                broker,
                prefix=options.topic_prefix,
                sources=[due],
            )
        )
    for agent in agents:
        agent.start()
    try:
        _wait(options, agents, warps, clock, progress)
    finally:
        for agent in agents:
            agent.stop()
    return agents


def _wait(
    options: DemoOptions,
    agents: list[EdgeAgent],
    warps: list[TimeWarpSource],
    clock: Callable[[], float],
    progress: Progress | None,
) -> None:
    def report(fraction: float) -> None:
        if progress is not None:
            progress(
                fraction,
                sum(a.counters.accepted for a in agents),
                sum(a.counters.confirmed for a in agents),
            )

    while clock() < options.duration_s or any(w.remaining for w in warps):
        report(min(1.0, clock() / options.duration_s))
        time.sleep(0.1)
    for agent in agents:
        agent.stop_sources()
    deadline = time.monotonic() + options.drain_timeout_s
    while time.monotonic() < deadline:
        report(1.0)
        if all(a.depth == 0 and a.counters.confirmed >= a.counters.accepted for a in agents):
            return
        time.sleep(0.1)
    log.warning(
        "outboxes did not drain within %.0f s; unconfirmed readings count as lost",
        options.drain_timeout_s,
    )


def _forget_demo_sessions(
    broker_url: str, prefix: str, agents: list[EdgeAgent], ingest_client_id: str
) -> None:
    """The demo's gateways and worker are one-off: leave no sessions or retained status."""
    broker = parse_broker_url(broker_url)
    for agent in agents:
        forget_session(
            broker, agent.gateway, retained=[gateway_topic(agent.gateway, "status", prefix)]
        )
    forget_session(broker, ingest_client_id)


def _summarise(database_url: str, agents: list[EdgeAgent]) -> dict[str, Any]:
    gateways = [agent.gateway for agent in agents]
    accepted = set().union(*(agent.counters.accepted_keys for agent in agents))
    # Dropped by the outbox's overflow policy (docs/reliability.md): reported, not lost.
    dropped = {
        (device, metric, datetime.fromisoformat(moment).astimezone(UTC).isoformat())
        for agent in agents
        for device, metric, moment in agent.counters.dropped_keys
        if moment != "?"
    }
    with psycopg.connect(database_url) as conn:
        stored_rows = conn.execute(
            "SELECT device, metric, time FROM readings WHERE gateway = ANY(%s)", (gateways,)
        ).fetchall()
        dead_rows = conn.execute(
            "SELECT device, metric, time FROM dead_letters "
            "WHERE gateway = ANY(%s) AND device IS NOT NULL",
            (gateways,),
        ).fetchall()
        dead_total = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE gateway = ANY(%s)", (gateways,)
        ).fetchone()
        stored_twice = conn.execute(
            "SELECT count(*) - count(DISTINCT (device, metric, time)) FROM readings "
            "WHERE gateway = ANY(%s)",
            (gateways,),
        ).fetchone()
        duplicates = conn.execute(
            "SELECT coalesce(sum(duplicates), 0) FROM ingest_batches WHERE gateway = ANY(%s)",
            (gateways,),
        ).fetchone()
        latency = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY "
            " extract(epoch FROM first_committed_at - sent_at) * 1000) "
            "FROM ingest_batches WHERE gateway = ANY(%s)",
            (gateways,),
        ).fetchone()
        subjects = conn.execute(
            "SELECT DISTINCT subject FROM readings WHERE gateway = ANY(%s)", (gateways,)
        ).fetchall()
        alerts = conn.execute(
            "SELECT rule, count(*) FROM alerts WHERE subject = ANY(%s) GROUP BY rule ORDER BY rule",
            ([s[0] for s in subjects],),
        ).fetchall()

    def keys(rows: list[tuple[Any, ...]]) -> set[tuple[str, str, str]]:
        return {(str(d), str(m), t.astimezone(UTC).isoformat()) for d, m, t in rows}

    stored = keys(stored_rows)
    dead = keys(dead_rows)
    p50, p95 = latency[0] if latency and latency[0] else [0.0, 0.0]
    return {
        "published": len(accepted),
        "stored": len(stored),
        "duplicates_dropped": int(duplicates[0]) if duplicates else 0,
        "duplicates_stored": int(stored_twice[0]) if stored_twice else 0,
        "lost": len(accepted - stored - dead - dropped),
        "dropped_by_policy": len(dropped),
        "dead_lettered": int(dead_total[0]) if dead_total else 0,
        "alerts": {str(rule): int(count) for rule, count in alerts},
        "handoffs": 0,
        "latency_ms": {"p50": round(float(p50), 1), "p95": round(float(p95), 1)},
    }
