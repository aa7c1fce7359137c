"""``vitalstream bench edge``: a Raspberry-Pi-class gateway's footprint and its drain rate.

Two measurements (issue 6, "Performance"; CONTRACTS.md ``bench edge``):

1. **Footprint**: an agent process with 8 simulated BLE-like devices at 1 Hz plus one HL7
   monitor pushing an ORU^R01 every second over MLLP (a real TCP client in this process),
   publishing to the real broker with an in-process ingest service confirming. The agent runs
   in a child process so its RSS and CPU are its own: the child reads ``/proc/self/status``
   (VmRSS) and ``resource.getrusage`` (user + system CPU) over a steady-state interval, and
   reports ``cpu_pct`` as a percentage of one core.
2. **Drain**: 36 000 readings (one hour offline at 10 readings/s) written into a fresh outbox
   (``outbox_write_per_s``: one fsync'd transaction per second's worth of 10 readings), then an
   agent starts against the broker and we time until the ingest service has confirmed all of
   them (``drain_readings_per_s``, including connect time).

Everything it creates is removed: the database, the broker sessions and retained topics (a
unique topic prefix), the temporary outbox directory.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import typer
from psycopg import sql

from edge_agent import EdgeAgent, Outbox
from firmware_bridge.mllp import MllpDeframer, frame
from vitals import Reading, gateway_topic, parse_broker_url
from vitals.broker import forget_session
from vitalstream.output import console, emit_json

DEVICES = 8
FOOTPRINT_WARMUP_S = 5.0
FOOTPRINT_INTERVAL_S = 30.0
DRAIN_READINGS = 36_000
READINGS_PER_SECOND_OFFLINE = 10
DRAIN_TIMEOUT_S = 300.0

BROKER_ENV = "VITALSTREAM_BROKER_URL"
DATABASE_ENV = "VITALSTREAM_DATABASE_URL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the agent child (footprint) -----------------------------------------------------------------


class OneHertzDevices:
    """``devices`` wearables sending heart rate once per second (wall clock), as a source."""

    def __init__(self, gateway: str, devices: int, seed: int = 1) -> None:
        self._gateway = gateway
        self._devices = devices
        self._rng = random.Random(seed)
        self._last = int(time.time())

    def __call__(self) -> list[Reading]:
        now = int(time.time())
        out: list[Reading] = []
        for second in range(self._last + 1, now + 1):
            moment = datetime.fromtimestamp(second, UTC)
            for index in range(self._devices):
                out.append(
                    Reading(
                        subject=f"bench-{self._gateway}-{index}",
                        device=f"{self._gateway}-dev{index}",
                        metric="heart_rate",
                        value=float(self._rng.randint(60, 90)),
                        unit="/min",
                        time=moment,
                        source="sim",
                    )
                )
        self._last = now
        return out


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (``ru_maxrss`` would include the parent's peak:
    Linux keeps it across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def footprint_child(spec_json: str) -> None:
    """Run in the child: an agent with 8 devices + an HL7 listener; print its own figures."""
    from edge_agent.hl7_listener import Hl7Listener, PatientMap  # noqa: PLC0415

    spec = json.loads(spec_json)
    gateway = spec["gateway"]
    listener = Hl7Listener(
        PatientMap((), f"bench-{gateway}-monitor"), host="127.0.0.1", port=spec["hl7_port"]
    )
    listener.start()
    agent = EdgeAgent(
        gateway,
        Path(spec["outbox"]),
        parse_broker_url(spec["broker_url"]),
        prefix=spec["prefix"],
        sources=[OneHertzDevices(gateway, DEVICES), listener],
    )
    agent.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(spec["warmup_s"])
    cpu0, wall0 = _cpu_s(), time.monotonic()
    time.sleep(spec["interval_s"])
    cpu1, wall1 = _cpu_s(), time.monotonic()
    rss = _status_mb("VmRSS")
    agent.stop()
    listener.stop()
    peak = _status_mb("VmHWM")
    result = {
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "cpu_pct": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 2),
        "accepted": agent.counters.accepted,
        "confirmed": agent.counters.confirmed,
        "hl7_messages": listener.counters.accepted,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def _bench_message(sequence: int, moment: datetime) -> bytes:
    stamp = moment.strftime("%Y%m%d%H%M%S") + "+0000"
    rows = [
        f"MSH|^~\\&|BENCH_MONITOR^0000000000000001^EUI-64|BENCH|||{stamp}||ORU^R01^ORU_R01|"
        f"{sequence}|P|2.6|||AL|NE",
        "PID|||BENCH0001^^^Hospital^PI",
        f"OBR|1|{sequence}^BENCH||182777000^monitoring of patient^SCT|||{stamp}",
        "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.147842|72|264864^MDC_DIM_BEAT_PER_MIN^MDC"
        f"|||||R|||{stamp}",
        "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC"
        f"|||||R|||{stamp}",
        "OBX|3|NM|151562^MDC_RESP_RATE^MDC|1.1.1.151562|16|264928^MDC_DIM_RESP_PER_MIN^MDC"
        f"|||||R|||{stamp}",
    ]
    return frame(("\r".join(rows) + "\r").encode())


def _monitor(port: int, stop: threading.Event, acks: list[str]) -> None:
    """A bedside monitor: one ORU per second, waiting for each ACK (original mode)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), 2)
            break
        except OSError:
            if time.monotonic() > deadline or stop.is_set():
                return
            time.sleep(0.1)
    with sock:
        sock.settimeout(15)
        deframer = MllpDeframer()
        sequence = 0
        while not stop.wait(1.0):
            sequence += 1
            sock.sendall(_bench_message(sequence, datetime.now(UTC).replace(microsecond=0)))
            got: list[str] = []
            while not got:
                data = sock.recv(65536)
                if not data:
                    return
                got = [e.payload.decode() for e in deframer.feed(data) if hasattr(e, "payload")]
            acks.extend(got)


# -- the parent: database, ingest, drain ---------------------------------------------------------


def _create_database(admin_url: str) -> str:
    name = f"vs_bench_edge_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def _drop_database(admin_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def _fill_outbox(path: Path, gateway: str, count: int) -> float:
    """Write ``count`` readings as one hour offline would; returns readings written per s."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    per_second = READINGS_PER_SECOND_OFFLINE
    rng = random.Random(7)
    began = time.perf_counter()
    with Outbox(path) as outbox:
        for second in range(count // per_second):
            moment = start + timedelta(seconds=second)
            outbox.put(
                [
                    Reading(
                        subject=f"bench-{gateway}-{index}",
                        device=f"{gateway}-dev{index}",
                        metric="heart_rate",
                        value=float(rng.randint(60, 90)),
                        unit="/min",
                        time=moment,
                        source="sim",
                    )
                    for index in range(per_second)
                ]
            )
    return count / (time.perf_counter() - began)


def run_bench_edge(
    broker_url: str, admin_url: str, *, interval_s: float = FOOTPRINT_INTERVAL_S
) -> dict[str, Any]:
    """Both measurements; everything created is removed before returning."""
    from ingest_service import IngestService, IngestSettings  # noqa: PLC0415

    broker = parse_broker_url(broker_url)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    footprint_gw, drain_gw = f"{prefix}-pi", f"{prefix}-drain"
    workdir = Path(tempfile.mkdtemp(prefix="vs-bench-edge-"))
    database_url = _create_database(admin_url)
    settings = IngestSettings(
        database_url=database_url,
        broker_url=broker_url,
        topic_prefix=prefix,
        ingest_client_id=f"{prefix}-ingest",
    )
    ingest = IngestService(settings)
    try:
        ingest.start()
        if not ingest.wait_ready(30):
            raise RuntimeError(f"the ingest service could not subscribe at {broker_url}")
        footprint = _footprint(broker_url, prefix, footprint_gw, workdir, interval_s)
        console.print(f"footprint: {footprint}")
        write_rate = _fill_outbox(workdir / "drain.sqlite", drain_gw, DRAIN_READINGS)
        drain_rate, drained = _drain(workdir / "drain.sqlite", drain_gw, broker_url, prefix)
    finally:
        ingest.stop()
        for client, gateway in ((footprint_gw, footprint_gw), (drain_gw, drain_gw)):
            forget_session(broker, client, retained=[gateway_topic(gateway, "status", prefix)])
        forget_session(broker, settings.ingest_client_id)
        _drop_database(admin_url, database_url)
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rss_mb": footprint["rss_mb"],
        "cpu_pct": footprint["cpu_pct"],
        "devices": DEVICES + 1,
        "outbox_write_per_s": round(write_rate, 1),
        "drain_readings_per_s": round(drain_rate, 1),
        "peak_rss_mb": footprint["peak_rss_mb"],
        "interval_s": interval_s,
        "readings_accepted": footprint["accepted"],
        "hl7_messages": footprint["hl7_messages"],
        "drained": drained,
        "drain_s": round(drained / drain_rate, 2) if drain_rate else None,
    }


def _footprint(
    broker_url: str, prefix: str, gateway: str, workdir: Path, interval_s: float
) -> dict[str, Any]:
    port = _free_port()
    spec = {
        "gateway": gateway,
        "outbox": str(workdir / "footprint.sqlite"),
        "broker_url": broker_url,
        "prefix": prefix,
        "hl7_port": port,
        "warmup_s": FOOTPRINT_WARMUP_S,
        "interval_s": interval_s,
    }
    code = "import sys; from vitalstream.commands.bench_edge import footprint_child; " + (
        "footprint_child(sys.argv[1])"
    )
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", code, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()
    acks: list[str] = []
    monitor = threading.Thread(target=_monitor, args=(port, stop, acks), daemon=True)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark agent did not start")
        monitor.start()
        line = child.stdout.readline()
        stop.set()
        child.wait(30)
    finally:
        stop.set()
        if child.poll() is None:
            child.kill()
            child.wait()
    monitor.join(5)
    if not line:
        raise RuntimeError("the benchmark agent ended without a result")
    result: dict[str, Any] = json.loads(line)
    result["hl7_acks"] = len(acks)
    return result


def _drain(path: Path, gateway: str, broker_url: str, prefix: str) -> tuple[float, int]:
    agent = EdgeAgent(gateway, path, parse_broker_url(broker_url), prefix=prefix)
    began = time.perf_counter()
    agent.start()
    deadline = began + DRAIN_TIMEOUT_S
    while agent.counters.confirmed < DRAIN_READINGS and time.perf_counter() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    agent.stop()
    confirmed = agent.counters.confirmed
    return confirmed / elapsed, confirmed


def bench_edge_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Gateway footprint (8 devices at 1 Hz + one HL7 monitor) and the drain of one hour offline.

    Needs the broker (VITALSTREAM_BROKER_URL, default mqtt://127.0.0.1:1883) and PostgreSQL
    (VITALSTREAM_DATABASE_URL's server; a fresh database is created and dropped).
    Example: vitalstream bench edge --json -> {"rss_mb": 38.2, "cpu_pct": 2.1, ...}
    """
    broker_url = os.environ.get(BROKER_ENV, "mqtt://127.0.0.1:1883")
    admin_url = psycopg.conninfo.make_conninfo(
        os.environ.get(DATABASE_ENV, "postgresql://postgres@127.0.0.1:5432/postgres"),
        dbname="postgres",
    )
    result = run_bench_edge(broker_url, admin_url)
    if json_output:
        emit_json(result)
        return
    typer.echo(
        f"agent RSS {result['rss_mb']} MB, CPU {result['cpu_pct']} % of one core with "
        f"{result['devices']} devices; outbox {result['outbox_write_per_s']:,.0f} writes/s; "
        f"drain {result['drain_readings_per_s']:,.0f} readings/s"
    )
