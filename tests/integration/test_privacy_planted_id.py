"""A planted resident ID goes through enrolment and a whole run, and shows up nowhere (issue 10).

The ID is SYNTHETIC, made here at test time (region 110101, a 1957 birth date, a sequence,
and its GB 11643 check character computed by ``check_character``), so no real-looking ID is
written down in the repository. It is enrolled with ``vitalstream enrol`` (a subprocess with a
temporary key directory) and its subject then lives a day in the pipeline, against the real
broker and database:

- a home COPD patient: edge agent -> MQTT -> in-process ingest -> PostgreSQL, raising an
  ``spo2_low`` alert;
- an ambulance incident (the stroke script of ``vitalstream handoff demo``): crew events and
  monitor readings -> handoff service -> ER pre-alert -> FHIR Bundle at handover;
- API reads of the subject's readings, alerts and Bundle (which also writes audit rows).

Captured: every MQTT payload on ``<prefix>/#``, every log record at DEBUG, a ``pg_dump`` of the
database plus every row (``bytea`` columns raw), the Bundle, the API answers, the ER notices,
and every file the run wrote. The ID, its first 17 digits, its last 6 digits, its birth date in
context (region + birth date, ``YYYYMMDD``, ``YYYY-MM-DD``) and the ID's hex encoding must
appear in none of them. The enrolment key directory holds only key files: the clear ID is not
stored anywhere, not even by enrolment. Positive controls check that the subject did pass
through every channel searched, so the test cannot pass by capturing nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from integration_support import wait_for
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from test_api_support import api_client, bearer

from edge_agent import EdgeAgent
from edge_agent.simulator import SimPatient, simulate_home
from ingest_service import IngestService, IngestSettings
from ingest_service.handoff import HandoffService, HandoffSettings
from ingest_service.identity import SUBJECT_PATTERN, check_character
from vitals import BrokerAddress, Reading, gateway_topic, now_utc
from vitals.broker import forget_session
from vitalstream.handoff_demo import ErBoard, build_scenario

PG_DUMP = Path("/usr/bin/pg_dump")
NOW = datetime.now(UTC).replace(microsecond=0)

#: SYNTHETIC: region 110101 (Dongcheng, Beijing), born 1957-03-28, sequence 937. The check
#: character is computed, never written down.
REGION, BIRTH, SEQUENCE = "110101", "19570328", "937"


def synthetic_resident_id() -> str:
    """The planted ID: a valid GB 11643 number that belongs to nobody we know of."""
    body = REGION + BIRTH + SEQUENCE
    return body + check_character(body)


@dataclass(frozen=True)
class Needles:
    """Every form of the planted ID a leak could take, as patterns over text and bytes."""

    resident_id: str
    text: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False)
    raw: tuple[tuple[str, re.Pattern[bytes]], ...] = field(init=False)

    def __post_init__(self) -> None:
        number = self.resident_id
        birth_iso = f"{BIRTH[:4]}-{BIRTH[4:6]}-{BIRTH[6:]}"
        # The last 6 digits alone are short: only as a number of their own (not inside a
        # longer number, a hex string or the fraction of a timestamp), as a masked ID would
        # show them ("************011234" ends in them after a non-digit).
        last6 = number[-6:]
        text = (
            ("the ID", re.compile(re.escape(number), re.IGNORECASE)),
            ("its first 17 digits", re.compile(re.escape(number[:17]))),
            ("its last 6 digits", re.compile(rf"(?<![0-9A-Za-z.]){last6}(?![0-9A-Za-z])", re.I)),
            ("region + birth date", re.compile(re.escape(REGION + BIRTH))),
            ("the birth date YYYYMMDD", re.compile(rf"(?<![0-9A-Fa-f]){BIRTH}(?![0-9A-Fa-f])")),
            ("the birth date YYYY-MM-DD", re.compile(re.escape(birth_iso))),
            ("the ID in hex", re.compile(number.encode().hex(), re.IGNORECASE)),
        )  # fmt: skip
        object.__setattr__(self, "text", text)
        object.__setattr__(
            self,
            "raw",
            tuple(
                (what, re.compile(pattern.pattern.encode(), pattern.flags & re.IGNORECASE))
                for what, pattern in text
            ),
        )

    def found_in_text(self, haystack: str) -> list[str]:
        """Which forms of the ID ``haystack`` contains."""
        return [what for what, pattern in self.text if pattern.search(haystack)]

    def found_in_bytes(self, haystack: bytes) -> list[str]:
        """Which forms of the ID ``haystack`` contains (also as UTF-16, as some stores keep)."""
        wide = haystack.replace(b"\x00", b"")
        return [what for what, found in self.raw if found.search(haystack) or found.search(wide)]


# --------------------------------------------------------------------------- capture


class LogCapture(logging.Handler):
    """Every record of every logger, formatted with its traceback, kept in memory."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record) + f" args={record.args!r}"
        with self._guard:
            self.lines.append(text)


@dataclass
class MqttCapture:
    """A plain subscriber on ``<prefix>/#`` (clean session) recording topic and payload."""

    broker: BrokerAddress
    prefix: str
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    client_id: str = field(default_factory=lambda: f"privacy-tap-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self._subscribed = threading.Event()
        self._guard = threading.Lock()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_subscribe(self, *_: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._guard:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def start(self) -> None:
        self._client.connect(self.broker.host, self.broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "the MQTT tap could not subscribe"

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def database_dump(database_url: str) -> tuple[str, list[bytes]]:
    """``pg_dump`` of the database (when the client is installed) plus every row as text, and
    every ``bytea`` value raw (a dump shows those as hex)."""
    parts: list[str] = []
    if PG_DUMP.exists():
        dumped = subprocess.run(
            [str(PG_DUMP), "--no-owner", "--dbname", database_url],
            capture_output=True,
            check=False,
            timeout=120,
        )
        if dumped.returncode == 0:  # a client older than the server cannot dump it: rows below
            parts.append(dumped.stdout.decode("utf-8", errors="replace"))
    raw: list[bytes] = []
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            name = sql.Identifier(str(schema), str(table))
            rows = conn.execute(sql.SQL("SELECT t::text FROM {} t").format(name)).fetchall()
            parts.extend(str(row[0]) for row in rows)
            binary = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s AND data_type = 'bytea'",
                (schema, table),
            ).fetchall()
            for (column,) in binary:
                query = sql.SQL("SELECT {} FROM {} WHERE {} IS NOT NULL").format(
                    sql.Identifier(str(column)), name, sql.Identifier(str(column))
                )
                raw.extend(bytes(value) for (value,) in conn.execute(query).fetchall())
    return "\n".join(parts), raw


def files_under(*roots: Path) -> Iterator[Path]:
    """Every regular file under ``roots``."""
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path


def enrol(resident_id: str, key_dir: Path, data_dir: Path) -> tuple[str, str]:
    """``vitalstream enrol`` from outside: (subject, everything it printed)."""
    env = {**os.environ, "VITALSTREAM_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "vitalstream", "enrol", "--national-id", resident_id,
         "--key-dir", str(key_dir), "--json"],
        capture_output=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    printed = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, printed
    subject = str(json.loads(done.stdout)["subject"])
    return subject, printed


# --------------------------------------------------------------------------- the run


@dataclass
class Captured:
    """What the run left behind, by channel."""

    texts: dict[str, list[str]] = field(default_factory=dict)
    blobs: dict[str, list[bytes]] = field(default_factory=dict)


def _release_once(readings: list[Reading]) -> Any:
    pending = [readings]
    return lambda: pending.pop() if pending else []


def run_pipeline(
    subject: str,
    settings: IngestSettings,
    broker: BrokerAddress,
    prefix: str,
    workdir: Path,
    captured: Captured,
) -> str:
    """Home readings + an alert, and an ambulance incident up to its Bundle; the incident id."""
    home_gw, amb_gw = f"{prefix}-home", f"{prefix}-amb"
    incident = f"{prefix}-inc1"
    handoff_id = f"{prefix}-handoff"
    # Within the last hour: older readings would travel in the backfill lane, after newer
    # ones, and the rules judge a reading older than one already judged as late (no alert).
    home = simulate_home(SimPatient(subject, home_gw, "copd"), NOW - timedelta(minutes=50), NOW, 1)
    scenario = build_scenario(
        "stroke", SimPatient(subject, amb_gw, "ambulance", incident=incident), now_utc()
    )
    er = ErBoard(workdir / "er")
    service = IngestService(settings)
    handoff = HandoffService(
        HandoffSettings(
            database_url=settings.database_url,
            broker_url=settings.broker_url,
            topic_prefix=prefix,
            handoff_client_id=handoff_id,
            er_webhook_url=None,
        ),
        notify=er.notify,
        receive_handoff=er.receive,
    )
    home_agent = EdgeAgent(
        home_gw, workdir / "home.outbox", broker, prefix=prefix, sources=[_release_once(home)]
    )
    amb_agent = EdgeAgent(
        amb_gw,
        workdir / "amb.outbox",
        broker,
        prefix=prefix,
        sources=[_release_once(list(scenario.readings))],
    )
    agents = (home_agent, amb_agent)
    try:
        service.start()
        assert service.wait_ready(10), "the ingest service could not subscribe"
        handoff.start()
        assert handoff.wait_ready(20), "the handoff service could not subscribe"
        for agent in agents:
            agent.start()
        amb_agent.submit_event(scenario.open_event)
        amb_agent.submit_event(scenario.findings_event)
        assert er.wait(lambda: bool(er.notices), 60), "the ER was not pre-alerted"
        assert wait_for(
            lambda: all(
                a.depth == 0 and a.counters.accepted > 0
                and a.counters.confirmed >= a.counters.accepted
                for a in agents
            ),
            60,
        ), "the outboxes did not drain"  # fmt: skip
        amb_agent.submit_event(scenario.handover(now_utc()))
        assert er.wait(lambda: er.receipt is not None, 60), "no Bundle reached the ER"
    finally:
        for agent in agents:
            agent.stop()
        handoff.stop()
        service.stop()
        for gateway in (home_gw, amb_gw):
            forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", prefix)])
        forget_session(broker, handoff_id)
    assert er.bundle_path is not None
    captured.texts["the handoff Bundle"] = [er.bundle_path.read_text()]
    captured.texts["the ER pre-alerts"] = [repr(notice) for notice, _ in er.notices]
    return incident


def test_a_planted_resident_id_appears_nowhere_after_a_whole_run(
    database_url: str,
    broker: BrokerAddress,
    topic_prefix: str,
    ingest_settings: IngestSettings,
    tmp_path: Path,
) -> None:
    resident_id = synthetic_resident_id()
    needles = Needles(resident_id)
    # The searches find what they look for (so "found nowhere" means something).
    assert needles.found_in_text(f"id {resident_id.lower()}") and needles.found_in_bytes(
        ("x" + resident_id).encode("utf-16-le")
    )
    assert needles.found_in_text(f"masked ************{resident_id[-6:]}") == ["its last 6 digits"]
    key_dir, enrol_data = tmp_path / "enrolment-keys", tmp_path / "enrol-data"
    subject, enrol_output = enrol(resident_id, key_dir, enrol_data)
    assert SUBJECT_PATTERN.match(subject), subject
    assert enrol(resident_id, key_dir, enrol_data)[0] == subject  # same ID, same key: same subject

    captured = Captured(texts={"the enrol command's output": [enrol_output]})
    logs = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    tap = MqttCapture(broker, topic_prefix)
    try:
        tap.start()
        workdir = tmp_path / "run"
        workdir.mkdir()
        incident = run_pipeline(subject, ingest_settings, broker, topic_prefix, workdir, captured)
        with api_client(database_url, tmp_path / "api") as client:
            admin = bearer(client, "admin", "privacy-auditor")
            answers = [
                client.get(f"/api/v1/subjects/{subject}/readings", params={
                    "start": (NOW - timedelta(hours=7)).isoformat(),
                    "end": now_utc().isoformat(), "resolution": "raw", "limit": 10000,
                }, headers=admin),
                client.get("/api/v1/alerts", params={"subject": subject}, headers=admin),
                client.get(f"/api/v1/incidents/{incident}/bundle", headers=admin),
                client.get(f"/api/v1/subjects/{subject}/latest", headers=admin),
            ]  # fmt: skip
        assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
        captured.texts["the API answers"] = [a.text for a in answers]
    finally:
        tap.stop()
        root.removeHandler(logs)
        root.setLevel(level)
    captured.texts["the service logs"] = logs.lines
    captured.blobs["the MQTT payloads"] = [payload for _, payload in tap.messages]
    captured.texts["the MQTT topics"] = [topic for topic, _ in tap.messages]
    dump_text, dump_raw = database_dump(database_url)
    captured.texts["the database dump"] = [dump_text]
    captured.blobs["the database's bytea values"] = dump_raw
    captured.blobs["the files the run wrote"] = [
        path.read_bytes() for path in files_under(tmp_path)
    ]

    # Positive controls: the subject went through every channel searched.
    payloads = b"\n".join(captured.blobs["the MQTT payloads"])
    assert subject.encode() in payloads, "no MQTT payload carried the subject"
    assert subject in dump_text, "the subject is not in the database dump"
    assert subject in captured.texts["the handoff Bundle"][0]
    assert "spo2_low" in dump_text, "the run raised no SpO2 alert"
    assert any(subject in a for a in captured.texts["the API answers"])
    assert any("ingest subscribed" in line for line in logs.lines), "the log capture is empty"
    assert any("handoff of" in line for line in logs.lines), "no handoff log line captured"

    leaks = [
        f"{', '.join(forms)} in {channel}"
        for channel, texts in captured.texts.items()
        for forms in (sorted({f for text in texts for f in needles.found_in_text(text)}),)
        if forms
    ] + [
        f"{', '.join(forms)} in {channel}"
        for channel, blobs in captured.blobs.items()
        for forms in (sorted({f for blob in blobs for f in needles.found_in_bytes(blob)}),)
        if forms
    ]
    assert not leaks, "the planted resident ID leaked: " + "; ".join(leaks)

    # Not even enrolment stores the clear ID: its directory holds only the keys, 0600.
    entries = sorted(key_dir.iterdir())
    assert [e.name for e in entries] == ["key-v1.bin"], [e.name for e in entries]
    for entry in entries:
        info = entry.stat()
        assert info.st_size == 32 and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    assert not key_dir.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    shutil.rmtree(tmp_path / "api", ignore_errors=True)


pytestmark = pytest.mark.slow
