"""A database filled like the demo, `vitalstream serve` on it, and a screenshot of each page.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--database-url URL]

Without ``--database-url`` a fresh database is made on the local PostgreSQL
(``postgresql://postgres@127.0.0.1:5432``) and dropped at the end. The browser is Debian's
``chromium`` driven by Playwright (``executable_path``; no browser download).

The data is SYNTHETIC and made by the demo's own code (docs/web.md, Screenshots):

- the five home patients of ``vitalstream demo`` (:func:`edge_agent.simulator.simulate_home`,
  with its scripted desaturation, hypoglycaemia, hypertensive crisis and motion artifact),
  with the rule packs the demo assigns (:func:`vitalstream.demo.assign_rule_packs`): two
  weeks of history, then the last 8 hours as one 20 s demo run sends them (its scripted
  events once more);
- their readings delivered every 10 minutes as gateway batches through the ingest
  path: validation (:func:`ingest_service.validate.validate_message`), the writer
  (:class:`ingest_service.storage.ReadingWriter`) and the rules engine
  (:class:`ingest_service.rules_runner.RuleRunner`), so every alert is a real one;
- a 5-minute glucose sensor for the diabetic patient (the simulator has meters only; the
  CGM page needs a sensor);
- two doctors answering alerts through :func:`ingest_service.alert_lifecycle.act`, the code
  of the inbox buttons (the follow-up metrics need answered alerts);
- ECG snippets from home: MIT-BIH records 100 (sinus) and 201 (AF) from ../shared/data,
  cut by the edge replay code and stored by the ingest waveform path, or a synthetic strip
  when the records are not there;
- password accounts (:func:`ingest_service.users.add_user`): :data:`PASSWORD` for all.

The browser flow test (tests/integration/test_web_flows_browser.py) uses the same seeding,
server and screenshots.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from playwright.sync_api import (
    Browser,
    FloatRect,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)
from psycopg import sql

from edge_agent.replay import RecordedSnippet, ReplayError, ecg_snippets, load_wfdb_waveform
from edge_agent.simulator import HOME_CONDITIONS, SimPatient, simulate_home
from ingest_service import migrate, users
from ingest_service.alert_lifecycle import act
from ingest_service.rules_runner import RuleRunner
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from ingest_service.waveforms import store_waveforms
from vitals import Batch, Reading, WaveformBatch, WaveformSnippet, encode, gateway_topic
from vitalstream.demo import assign_rule_packs

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PREFIX = "vs"
#: The password of every demo account (synthetic data on a local machine only).
PASSWORD = "demo-password-2026"  # noqa: S105 - a documented demo password
ZONE = "Asia/Shanghai"
#: How often the replay delivers (the rules engine marks readings judged more than 15 min
#: after they were taken as delayed; 10 min keeps the demo's alerts from that).
DELIVERY = timedelta(minutes=10)
#: The ingest transport delay the replay assumes (reading time to arrival).
TRANSPORT = timedelta(seconds=30)
#: The last part is what one `vitalstream demo` run of 20 s sends (24 h per minute: 8 h).
DEMO_WINDOW = timedelta(hours=8)
#: Alerts of the last hours (the demo run's) stay unanswered, so the inbox has work in it.
QUIET_HOURS = DEMO_WINDOW
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@dataclass
class DemoWorld:
    """Who and what the seeded database holds (for the tests and the screenshots)."""

    now: datetime
    patients: dict[str, str]  # condition -> subject
    doctor: str = "dr-li"
    covering_doctor: str = "dr-wang"
    reader: str = "dr-zhou"  # reads ECGs for the clinic
    patient_user: str = "patient-diabetes"
    other_patient_user: str = "patient-copd"
    password: str = PASSWORD
    snippets: list[int] = field(default_factory=list)
    readings: int = 0
    alerts: int = 0
    answered: int = 0

    @property
    def subjects(self) -> list[str]:
        """Every home patient, in the demo's order."""
        return list(self.patients.values())


# ------------------------------------------------------------------------------ seeding


def _cgm(subject: str, gateway: str, start: datetime, end: datetime, seed: int) -> list[Reading]:
    """A 5-minute glucose sensor (SYNTHETIC): meals, a night dip, noise; mmol/L."""
    rng = random.Random(seed)
    out: list[Reading] = []
    moment = start.replace(second=0, microsecond=0)
    moment += timedelta(minutes=5 - moment.minute % 5)
    while moment < end:
        local = moment.astimezone(ZoneInfo(ZONE))
        hour = local.hour + local.minute / 60
        value = 7.0 + 0.6 * math.sin(local.toordinal())
        for meal, rise in ((7.0, 3.8), (12.0, 3.2), (18.0, 4.4)):
            after = hour - meal
            if 0 <= after < 4:
                value += rise * math.sin(math.pi * after / 4) ** 2
        if 2 <= hour < 5:
            value -= 2.2 * math.sin(math.pi * (hour - 2) / 3)
        value += rng.gauss(0, 0.45)
        out.append(
            Reading(subject=subject, device=f"{gateway}-cgm", metric="glucose",
                    value=round(max(value, 2.3), 1), unit="mmol/L", time=moment, source="sim")
        )  # fmt: skip
        moment += timedelta(minutes=5)
    return out


def synthetic_ecg(seconds: float = 10.0, fs: float = 250.0) -> list[RecordedSnippet]:
    """A SYNTHETIC lead II strip (narrow QRS at 75/min) when MIT-BIH is not at hand."""
    counts: list[list[int]] = []
    for i in range(round(seconds * fs)):
        t = i / fs
        phase = t % 0.8
        mv = 1.1 * math.exp(-(((phase - 0.3) / 0.012) ** 2))  # R
        mv += 0.25 * math.exp(-(((phase - 0.55) / 0.05) ** 2))  # T
        mv += 0.1 * math.exp(-(((phase - 0.15) / 0.03) ** 2))  # P
        counts.append([round(mv / 0.005)])
    return ecg_snippets(["II"], counts, fs, [0.005], snippet_s=seconds, every_s=seconds)


def _mitdb_or_synthetic(record: str, skip_s: float) -> list[RecordedSnippet]:
    shared = Path(os.environ.get("VITALSTREAM_SHARED_DIR", REPO.parent / "shared"))
    for base in (shared, Path("/work/shared")):
        path = base / "data" / "mitdb_af_and_nsr" / record
        if path.with_suffix(".dat").is_file():
            try:
                cut = load_wfdb_waveform(path, snippet_s=10.0, every_s=skip_s,
                                         max_seconds=skip_s + 10.0)  # fmt: skip
            except ReplayError:
                break
            # The lead a home patch records (MLII); the second snippet is past the start.
            return [s for s in cut if s.channel == "ecg_ii"][-1:]
    return synthetic_ecg()


def _deliver(
    conn: psycopg.Connection[Any],
    writer: ReadingWriter,
    runner: RuleRunner,
    readings: Sequence[Reading],
    arrival: datetime,
    batch_no: int,
) -> list[int]:
    """One delivery's gateway batches through validation, the writer and the rules; the ids
    of the new alerts."""
    by_gateway: dict[str, list[Reading]] = {}
    for reading in readings:
        by_gateway.setdefault(reading.device.rsplit("-", 1)[0], []).append(reading)
    deliveries = []
    for gateway, items in sorted(by_gateway.items()):
        batch = Batch(batch_id=f"web-demo-{batch_no}-{gateway}", gateway=gateway,
                      sent_at=arrival - timedelta(seconds=5), readings=tuple(items))  # fmt: skip
        topic = gateway_topic(gateway, "readings", PREFIX)
        payload = encode(batch)
        outcome = validate_message(topic, payload, prefix=PREFIX, now=arrival)
        deliveries.append(Delivery(topic, payload, arrival, outcome))
    with conn.transaction():
        before = conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()
        result = writer.write(conn, deliveries, arrival)
        output = runner.judge(conn, result.inserted, arrival)
        # created_at is when the alert reached the system: its reading's time plus transport.
        new = conn.execute(
            "UPDATE alerts SET created_at = time + %s, active_since = time + %s"
            " WHERE id > %s RETURNING id",
            (TRANSPORT, TRANSPORT, before[0] if before else 0),
        ).fetchall()
    runner.adopt(output, {r.subject for r in result.inserted})
    return [int(row[0]) for row in new]


@dataclass(frozen=True)
class _Answer:
    due: datetime
    alert_id: int
    actor: str
    action: str
    note: str


def _plan_answer(
    rng: random.Random, alert_id: int, severity: str, created: datetime, world: DemoWorld
) -> list[_Answer]:
    """What the doctors do about a new alert: most acknowledged by the family doctor, some by
    the covering doctor, a few left open; urgent ones sooner; some resolved later."""
    roll = rng.random()
    if roll > 0.9:
        return []
    actor = f"doctor:{world.doctor if roll < 0.75 else world.covering_doctor}"
    minutes = {"critical": (2, 9), "high": (4, 30)}.get(severity, (20, 240))
    first = created + timedelta(minutes=rng.uniform(*minutes))
    notes = ("called the patient", "asked to re-measure", "medication reviewed", "")
    plan = [_Answer(first, alert_id, actor, "acknowledge", rng.choice(notes))]
    if rng.random() < 0.85:
        plan.append(_Answer(first + timedelta(hours=rng.uniform(1, 12)), alert_id, actor,
                            "resolve", "followed up by phone"))  # fmt: skip
    return plan


def seed_demo(
    database_url: str, now: datetime | None = None, *, days: int = 14, seed: int = 20261125
) -> DemoWorld:
    """Fill ``database_url`` like the demo (module docstring); readings up to ``now``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = now - timedelta(days=days)
    patients = [
        SimPatient(subject=f"sim-web-p{i + 1:02d}", gateway=f"sim-web-home{i + 1:02d}",
                   condition=condition)
        for i, condition in enumerate(HOME_CONDITIONS)
    ]  # fmt: skip
    world = DemoWorld(now=now, patients={str(p.condition): p.subject for p in patients})
    readings: list[Reading] = []
    demo_run = now - DEMO_WINDOW
    for index, patient in enumerate(patients):
        # Two weeks of history, then what a 20 s demo run sends (its scripted events again).
        readings += simulate_home(patient, start, demo_run, seed + index)
        readings += simulate_home(patient, demo_run, now, seed + 100 + index)
        if patient.condition == "diabetes":
            readings += _cgm(patient.subject, patient.gateway, start, now, seed)
    readings.sort(key=lambda r: r.time)
    rng = random.Random(seed)
    hasher = users.SecretHasher()
    with psycopg.connect(database_url) as conn:
        writer = ReadingWriter(migrate(conn))
        assign_rule_packs(conn, patients)
        runner = RuleRunner()
        runner.load(conn)
        plans: list[_Answer] = []
        cursor, index, batch_no = start, 0, 0
        while cursor < now:
            upto = min(cursor + DELIVERY, now)
            chunk: list[Reading] = []
            while index < len(readings) and readings[index].time < upto:
                chunk.append(readings[index])
                index += 1
            arrival = min(upto + TRANSPORT, now)
            if chunk:
                batch_no += 1
                for alert_id in _deliver(conn, writer, runner, chunk, arrival, batch_no):
                    severity, created = conn.execute(
                        "SELECT severity, created_at FROM alerts WHERE id = %s", (alert_id,)
                    ).fetchone() or ("medium", arrival)
                    plans += _plan_answer(rng, alert_id, str(severity), created, world)
            due = sorted((p for p in plans if p.due <= arrival), key=lambda p: p.due)
            plans = [p for p in plans if p.due > arrival]
            for answer in due:
                if answer.due > now - QUIET_HOURS:
                    continue
                outcome = act(conn, answer.alert_id, answer.action,  # type: ignore[arg-type]
                              answer.actor, answer.due, note=answer.note,
                              context={"via": "web-demo"})  # fmt: skip
                world.answered += int(outcome.changed)
            cursor = upto
        world.readings = len(readings)
        _store_ecgs(conn, world, patients, now)
        _accounts(conn, hasher, world, now)
        count = conn.execute("SELECT count(*) FROM alerts").fetchone()
        world.alerts = int(count[0]) if count else 0
    return world


def _store_ecgs(
    conn: psycopg.Connection[Any], world: DemoWorld, patients: list[SimPatient], now: datetime
) -> None:
    """Two home ECG snippets through the ingest waveform path, one hour and 40 minutes old:
    the heart-failure patient's in AF (MIT-BIH 201 at 60 s), the elderly patient's in sinus
    rhythm (MIT-BIH 100 at 60 s)."""
    plan = (("heart_failure", "201", 60.0, 60), ("elderly", "100", 60.0, 40))
    messages: list[tuple[str, bytes]] = []
    for condition, record, skip_s, minutes_ago in plan:
        patient = next(p for p in patients if p.condition == condition)
        recorded = _mitdb_or_synthetic(record, skip_s)
        taken = now - timedelta(minutes=minutes_ago)
        snippets = tuple(
            WaveformSnippet(subject=patient.subject, device=patient.device("ecgpatch"),
                            channel=r.channel, start=taken, sample_rate_hz=r.sample_rate_hz,
                            scale=r.scale, samples=r.samples, source="sim")
            for r in recorded
        )  # fmt: skip
        batch = WaveformBatch(batch_id=f"web-demo-ecg-{condition}", gateway=patient.gateway,
                              sent_at=taken + timedelta(seconds=12), snippets=snippets)  # fmt: skip
        messages.append((gateway_topic(patient.gateway, "waveform", PREFIX), encode(batch)))
    with conn.transaction():
        store_waveforms(conn, messages, now, PREFIX)
        rows = conn.execute("SELECT id FROM waveforms ORDER BY start_time").fetchall()
    world.snippets = [int(r[0]) for r in rows]


def _accounts(
    conn: psycopg.Connection[Any], hasher: users.SecretHasher, world: DemoWorld, now: datetime
) -> None:
    subjects = world.subjects
    with conn.transaction():
        for username, role, subject, contract in (
            (world.doctor, "doctor", None, subjects),
            (world.covering_doctor, "doctor", None, subjects[:3]),
            (world.reader, "doctor", None, subjects),
            (world.patient_user, "patient", world.patients["diabetes"], ()),
            (world.other_patient_user, "patient", world.patients["copd"], ()),
        ):
            users.add_user(conn, hasher, username=username, role=role, password=world.password,
                           now=now, subject=subject, contracted=contract)  # fmt: skip


# ------------------------------------------------------------------------------ the server


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served(database_url: str, workdir: Path, **extra_env: str) -> Iterator[str]:
    """`vitalstream serve` on a free 127.0.0.1 port; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "VITALSTREAM_API_KEY_FILE": str(workdir / "api-token.key"),
        "VITALSTREAM_DATA_DIR": str(workdir / "data"),
        "VITALSTREAM_WEB_TIMEZONE": ZONE,
        **extra_env,
    }
    command = [
        str(Path(sys.executable).parent / "vitalstream"), "serve", "--host", "127.0.0.1",
        "--port", str(port), "--database-url", database_url, "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError("vitalstream serve exited")
            if time.monotonic() > deadline:
                raise RuntimeError("vitalstream serve did not come up in 30 s")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


@contextlib.contextmanager
def scratch_database(
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> Iterator[str]:
    """A new empty database on the local server, dropped afterwards; yields its URL."""
    name = f"vs_screens_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --------------------------------------------------------------------------- the browser

#: Debian's Chromium as the existing browser tests start it (no sandbox: CI runs as root).
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)  # fmt: skip


def launch(playwright: Playwright) -> Browser:
    """Debian's ``chromium`` through Playwright (``executable_path``: nothing downloaded)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))


def log_in(browser: Browser, base: str, username: str, password: str = PASSWORD) -> Page:
    """A new browser context logged in through the /login form; the page it landed on."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id=ZONE)
    page = context.new_page()
    page.goto(f"{base}/login?lang=en")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form.card button[type=submit]")
    return page


@dataclass(frozen=True)
class Shot:
    """One screenshot: file name, who looks, the path, and what is captured."""

    name: str
    who: str  # "", "doctor", "reader", "patient"
    path: str
    full_page: bool = False
    element: str | None = None
    max_height: int | None = None  # a full page cut at this height (CSS pixels)


def shots(world: DemoWorld) -> tuple[Shot, ...]:
    """Every page a person uses (ER pages: tests/integration/test_er_browser.py)."""
    diabetes, copd = world.patients["diabetes"], world.patients["copd"]
    af = world.snippets[0] if world.snippets else 1
    return (
        Shot("login", "", "/login?lang=en"),
        Shot("doctor-panel", "doctor", "/doctor?live=false&lang=en"),
        Shot("doctor-panel-zh", "doctor", "/doctor?live=false&lang=zh"),
        Shot("doctor-inbox", "doctor", "/doctor/alerts?lang=en"),
        Shot("doctor-patient", "doctor", f"/doctor/subjects/{diabetes}?lang=en", full_page=True,
             max_height=1650),
        Shot("doctor-patient-zh", "doctor", f"/doctor/subjects/{diabetes}?lang=zh",
             element="#trends-h + .charts"),
        Shot("doctor-cgm-agp", "doctor", f"/doctor/subjects/{diabetes}/cgm?lang=en",
             full_page=True),
        Shot("doctor-rule-settings", "doctor", f"/doctor/subjects/{copd}?lang=en",
             element="#rules"),
        Shot("doctor-followup", "doctor", "/doctor/followup?lang=en"),
        Shot("doctor-followup-zh", "doctor", "/doctor/followup?lang=zh"),
        Shot("ecg-queue", "reader", "/ecg"),
        Shot("ecg-reader", "reader", f"/ecg/{af}", full_page=True),
        Shot("patient-me-zh", "patient", "/me?lang=zh", full_page=True),
        Shot("patient-me-en", "patient", "/me?lang=en", full_page=True),
        Shot("patient-cgm-day-zh", "patient", "/me/cgm?lang=zh", full_page=True),
    )  # fmt: skip


def take_screenshots(browser: Browser, base: str, world: DemoWorld, out: Path) -> list[Path]:
    """Log in as each user once and write one PNG per :func:`shots` entry into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    users_of = {"doctor": world.doctor, "reader": world.reader, "patient": world.patient_user}
    pages: dict[str, Page] = {}
    written: list[Path] = []
    for shot in shots(world):
        if shot.who not in pages:
            if shot.who:
                pages[shot.who] = log_in(browser, base, users_of[shot.who], world.password)
            else:
                pages[""] = browser.new_context(viewport=VIEWPORT).new_page()
        page = pages[shot.who]
        response = page.goto(base + shot.path)
        if response is None or response.status != 200:
            raise RuntimeError(f"{shot.path}: HTTP {response.status if response else '?'}")
        if page.locator("#chart-config, #cgm-config").count():
            page.locator(".uplot canvas").first.wait_for()
        target = out / f"{shot.name}.png"
        if shot.element:
            page.locator(shot.element).first.screenshot(path=str(target))
        elif shot.max_height:
            clip: FloatRect = {
                "x": 0,
                "y": 0,
                "width": VIEWPORT["width"],
                "height": shot.max_height,
            }
            page.screenshot(path=str(target), full_page=True, clip=clip)
        else:
            page.screenshot(path=str(target), full_page=shot.full_page)
        written.append(target)
    for page in pages.values():
        page.context.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, serve, screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--database-url", help="an EMPTY database to fill (default: a scratch one)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.database_url or stack.enter_context(scratch_database())
        world = seed_demo(url)
        print(f"seeded: {world.readings} readings, {world.alerts} alerts, "
              f"{world.answered} doctor actions, ECG snippets {world.snippets}")  # fmt: skip
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vs-shots-")))
        base = stack.enter_context(served(url, workdir))
        with sync_playwright() as playwright:
            browser = launch(playwright)
            for path in take_screenshots(browser, base, world, args.out):
                print(f"{path} ({path.stat().st_size // 1024} kB)")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
