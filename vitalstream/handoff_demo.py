"""``vitalstream handoff demo``: one scripted ambulance incident through the real pipeline.

Wiring only, like :mod:`vitalstream.demo`: the database and broker come from
:mod:`vitalstream.services` (embedded when none answers), the ingest service runs as a child
(``vitalstream ingest run``, under :class:`vitalstream.demo.IngestSupervisor`), the handoff
service (:mod:`ingest_service.handoff`) and one edge agent run in this process, and an
in-process "ER board" receives the pre-alerts and the FHIR Bundle.

    simulated monitor -> EdgeAgent outbox (vitals lane) -> MQTT readings -> ingest -> readings
    crew events       -> EdgeAgent.submit_event -> the same outbox (alarm lane)
                      -> MQTT events -> handoff service -> rules -> ER notified
                      -> handover -> bundle.json (the handoff service confirms each event)

Everything in the script is SYNTHETIC and labelled so: source ``sim``, ids starting with
``sim-``, a temporary ``tmp-…`` subject (the unidentified-patient path), no names, no IDs.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg

from edge_agent import EdgeAgent
from edge_agent.simulator import SimPatient, TimeWarpSource, simulate_ambulance
from ingest_service import migrate
from ingest_service.handoff import ErNotice, HandoffService, HandoffSettings, write_bundle
from ingest_service.identity import temporary_subject
from vitals import NoValue, Reading, gateway_topic, now_utc, parse_broker_url
from vitals import metric as catalogue_metric
from vitals.broker import forget_session
from vitals.incident import (
    TEAM_OF,
    Atmist,
    Findings,
    HandoffReceipt,
    Incident,
    IncidentEvent,
    Sbar,
    Timeline,
)
from vitalstream import services
from vitalstream.demo import IngestSupervisor

log = logging.getLogger("vitalstream.handoff_demo")

DemoPathway = Literal["stroke", "stemi", "trauma", "maternal"]
DEMO_PATHWAYS: tuple[DemoPathway, ...] = ("stroke", "stemi", "trauma", "maternal")

#: The transport the readings cover (simulated minutes) and the wall seconds they take.
TRANSPORT_MINUTES = 8
RELEASE_SECONDS = 3.0


class HandoffDemoError(RuntimeError):
    """The scripted incident did not reach the ER as expected; the message says where."""


@dataclass(frozen=True, slots=True)
class HandoffDemoOptions:
    """What the demo runs against."""

    pathway: DemoPathway
    out_dir: Path
    database_url: str
    broker_url: str
    topic_prefix: str
    data_dir: Path
    embedded_broker: Literal["auto", "mosquitto", "amqtt"] = "auto"
    timeout_s: float = 90.0
    seed: int = 20261125


# --------------------------------------------------------------------------- the edge side


@dataclass(frozen=True, slots=True)
class Scenario:
    """One synthetic incident: the monitor's readings and the crew's events."""

    readings: tuple[Reading, ...]
    open_event: IncidentEvent
    findings_event: IncidentEvent
    handover: Callable[[datetime], IncidentEvent]


def _reading(
    patient: SimPatient, name: str, moment: datetime, value: float | None, *, why: NoValue = "NaN"
) -> Reading:
    return Reading(
        subject=patient.subject,
        device=patient.device("monitor"),
        metric=name,
        value=value,
        no_value=None if value is not None else why,
        unit=catalogue_metric(name).unit,
        time=moment,
        source="sim",
        incident=patient.incident,
    )


def _steady(
    patient: SimPatient, start: datetime, end: datetime, values: dict[str, float]
) -> list[Reading]:
    """Readings every 15 s (NIBP every 3 min) holding ``values``, with small variation."""
    out: list[Reading] = []
    moment, step = start + timedelta(seconds=15), 0
    while moment < end:
        wobble = (step % 3) - 1
        for name, value in values.items():
            if name.startswith("bp_") and step % 12:
                continue
            if name in ("glucose", "gcs", "body_temperature") and step % 20:
                continue
            shown = value if name in ("glucose", "gcs", "body_temperature") else value + wobble
            out.append(_reading(patient, name, moment, round(shown, 1)))
        moment += timedelta(seconds=15)
        step += 1
    return out


def build_scenario(pathway: DemoPathway, patient: SimPatient, now: datetime) -> Scenario:
    """The scripted, synthetic incident of ``pathway`` (times relative to ``now``)."""
    assert patient.incident is not None
    start = now - timedelta(minutes=TRANSPORT_MINUTES)
    call, on_scene = start - timedelta(minutes=14), start - timedelta(minutes=4)
    complaint: str
    findings: Findings
    atmist: Atmist
    sbar: Sbar
    if pathway == "stroke":
        readings = _steady(
            patient,
            start,
            now,
            {"heart_rate": 88, "spo2": 96, "respiratory_rate": 18, "bp_systolic": 178,
             "bp_diastolic": 96, "glucose": 6.4, "gcs": 14, "body_temperature": 36.8},
        )  # fmt: skip
        complaint = "sudden right arm weakness and slurred speech (SYNTHETIC)"
        findings = Findings(
            age_years=72, befast_positive=True, last_known_well=call - timedelta(minutes=25)
        )
        atmist = Atmist(
            age_years=72,
            time_of_onset=findings.last_known_well,
            mechanism="acute neurological deficit",
            injuries="right arm drift, facial droop, dysarthria",
            treatment="oxygen withheld (SpO2 96 %), IV access, glucose checked",
        )
        sbar = Sbar(
            situation="suspected acute stroke, BE-FAST positive",
            background="hypertension; on no anticoagulant (synthetic)",
            assessment="within the thrombolysis window",
            recommendation="straight to CT with the stroke team",
        )
    elif pathway == "stemi":
        readings = _steady(
            patient,
            start,
            now,
            {"heart_rate": 102, "spo2": 95, "respiratory_rate": 20, "bp_systolic": 132,
             "bp_diastolic": 84, "gcs": 15},
        )  # fmt: skip
        complaint = "central crushing chest pain for 40 min (SYNTHETIC)"
        findings = Findings(
            age_years=58,
            st_elevation=True,
            ecg_12lead_at=on_scene + timedelta(minutes=3),
            ecg_12lead_ref=f"{patient.incident}-ecg12",
            first_medical_contact=on_scene,
        )
        atmist = Atmist(
            age_years=58,
            time_of_onset=call - timedelta(minutes=30),
            mechanism="chest pain",
            injuries="ST elevation II, III, aVF on the 12-lead",
            treatment="aspirin 300 mg, GTN, IV access",
        )
        sbar = Sbar(
            situation="inferior STEMI",
            background="smoker (synthetic)",
            assessment="haemodynamically stable",
            recommendation="direct to the cath lab",
        )
    elif pathway == "trauma":
        readings = simulate_ambulance(patient, start, now, seed=7)
        complaint = "motorcyclist thrown at speed (SYNTHETIC)"
        findings = Findings(age_years=34, injured=True, gcs_motor=6)
        atmist = Atmist(
            age_years=34,
            time_of_onset=call - timedelta(minutes=5),
            mechanism="motorcycle collision, rider thrown",
            injuries="suspected pelvic fracture, abdominal tenderness",
            treatment="pelvic binder, 2 large-bore IV, TXA 1 g",
        )
        sbar = Sbar(
            situation="major trauma, deteriorating towards shock",
            background="no known history (synthetic)",
            assessment="haemorrhagic shock likely",
            recommendation="trauma team and massive-transfusion readiness",
        )
    else:
        readings = _steady(
            patient,
            start,
            now,
            {"heart_rate": 96, "spo2": 98, "respiratory_rate": 18, "bp_systolic": 168,
             "bp_diastolic": 112, "gcs": 15},
        )  # fmt: skip
        complaint = "34 weeks pregnant, severe headache and visual disturbance (SYNTHETIC)"
        findings = Findings(age_years=31, pregnant=True, gestation_weeks=34, seizure=False)
        atmist = Atmist(
            age_years=31,
            time_of_onset=call - timedelta(minutes=60),
            mechanism="headache, visual disturbance in pregnancy",
            injuries="none",
            treatment="left lateral position, IV access",
        )
        sbar = Sbar(
            situation="severe hypertension at 34 weeks",
            background="primigravida (synthetic)",
            assessment="suspected pre-eclampsia with severe features",
            recommendation="obstetric team, antihypertensive within 30-60 min",
        )
    # One channel the monitor reports without a value (capnography not connected, or no
    # glucometer reading), on purpose: the Bundle shows it as dataAbsentReason.
    measured = {r.metric for r in readings}
    absent = next(m for m in ("etco2", "glucose", "fio2") if m not in measured)
    readings = [*readings, _reading(patient, absent, start, None, why="not_measured")]
    gateway, incident = patient.gateway, patient.incident

    def event(
        kind: Literal["open", "update", "findings", "handover"], **fields: Any
    ) -> IncidentEvent:
        return IncidentEvent(
            event_id=f"{incident}-{kind}-{uuid.uuid4().hex[:8]}",
            kind=kind,
            incident=incident,
            gateway=gateway,
            **fields,
        )

    open_event = event(
        "open",
        time=on_scene,
        subject=patient.subject,
        chief_complaint=complaint,
        pathway=pathway,
        timeline=Timeline(call=call, on_scene=on_scene, depart=start),
        findings=Findings(age_years=findings.age_years),
    )
    findings_event = event(
        "findings",
        time=now,
        findings=findings,
        timeline=Timeline(eta=now + timedelta(minutes=6)),
    )

    def handover(moment: datetime) -> IncidentEvent:
        return event(
            "handover",
            time=moment,
            atmist=atmist,
            sbar=sbar,
            timeline=Timeline(arrival=moment - timedelta(minutes=1), handover=moment),
        )

    return Scenario(tuple(readings), open_event, findings_event, handover)


# --------------------------------------------------------------------------- the ER side


@dataclass
class ErBoard:
    """The demo's emergency department: takes pre-alerts and the handoff Bundle."""

    out_dir: Path
    notices: list[tuple[ErNotice, datetime]] = field(default_factory=list)
    receipt: HandoffReceipt | None = None
    bundle_path: Path | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def notify(self, notice: ErNotice) -> None:
        """An in-process pre-alert (a real ER board would page the team here)."""
        with self.changed:
            self.notices.append((notice, now_utc()))
            self.changed.notify_all()
        log.info("ER pre-alert: %s for %s", notice.activation.team, notice.activation.pathway)

    def receive(self, incident: Incident, bundle: str) -> HandoffReceipt:
        """Store the Bundle as ``bundle.json`` and acknowledge it."""
        path = write_bundle(self.out_dir / "bundle.json", bundle)
        receipt = HandoffReceipt(
            incident=incident.id,
            bundle_id=_bundle_id(bundle),
            status="accepted",
            received_by="demo ER board (SYNTHETIC)",
            received_at=now_utc(),
        )
        with self.changed:
            self.bundle_path, self.receipt = path, receipt
            self.changed.notify_all()
        return receipt

    def wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``condition`` holds or the time is up."""
        with self.changed:
            return self.changed.wait_for(condition, timeout_s)


def _bundle_id(bundle: str) -> str:
    import json  # noqa: PLC0415 - only here

    return str(json.loads(bundle)["id"])


# --------------------------------------------------------------------------- orchestration


def run_handoff_demo(options: HandoffDemoOptions) -> dict[str, Any]:
    """Run the incident and return the CONTRACTS.md summary."""
    run = uuid.uuid4().hex[:8]
    workdir = options.data_dir / f"handoff-{run}"
    workdir.mkdir(parents=True, exist_ok=True)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    ingest_id, handoff_id = f"vs-ingest-handoff-{run}", f"vs-handoff-demo-{run}"
    try:
        with (
            services.database(options.database_url, data_dir=options.data_dir) as db,
            services.broker(
                options.broker_url, data_dir=options.data_dir, prefer=options.embedded_broker
            ) as broker,
        ):
            with psycopg.connect(db.url) as conn:
                migrate(conn)
            env = dict(os.environ) | {
                "VITALSTREAM_DATABASE_URL": db.url,
                "VITALSTREAM_BROKER_URL": broker.url,
                "VITALSTREAM_TOPIC_PREFIX": options.topic_prefix,
                "VITALSTREAM_INGEST_CLIENT_ID": ingest_id,
            }
            ingest = IngestSupervisor(env, workdir)
            ingest.start()
            er = ErBoard(options.out_dir)
            handoff = HandoffService(
                HandoffSettings(
                    database_url=db.url,
                    broker_url=broker.url,
                    topic_prefix=options.topic_prefix,
                    handoff_client_id=handoff_id,
                    er_webhook_url=None,
                ),
                notify=er.notify,
                receive_handoff=er.receive,
            )
            gateway = f"sim-{run}-amb1"
            try:
                handoff.start()
                if not handoff.wait_ready(20):
                    raise HandoffDemoError("the handoff service could not subscribe")
                summary = _run_incident(options, run, broker.url, workdir, er, handoff)
            finally:
                handoff.stop()
                ingest.stop()
                address = parse_broker_url(broker.url)
                forget_session(
                    address,
                    gateway,
                    retained=[gateway_topic(gateway, "status", options.topic_prefix)],
                )
                forget_session(address, ingest_id)
                forget_session(address, handoff_id)
            return summary
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_incident(
    options: HandoffDemoOptions,
    run: str,
    broker_url: str,
    workdir: Path,
    er: ErBoard,
    handoff: HandoffService,
) -> dict[str, Any]:
    patient = SimPatient(
        subject=temporary_subject(secrets.token_bytes(16)),
        gateway=f"sim-{run}-amb1",
        condition="ambulance",
        incident=f"sim-{run}-inc1",
    )
    scenario = build_scenario(options.pathway, patient, now_utc())
    first = min(r.time for r in scenario.readings)
    speed = TRANSPORT_MINUTES * 60 / RELEASE_SECONDS
    warp = TimeWarpSource(scenario.readings, first - timedelta(seconds=1), speed)
    t0 = time.monotonic()

    def monitor() -> Sequence[Reading]:
        return warp.due(time.monotonic() - t0)

    agent = EdgeAgent(
        patient.gateway,
        workdir / f"{patient.gateway}.outbox",
        parse_broker_url(broker_url),
        prefix=options.topic_prefix,
        sources=[monitor],
    )
    team = TEAM_OF[options.pathway]
    deadline = time.monotonic() + options.timeout_s
    agent.start()
    try:
        agent.submit_event(scenario.open_event)
        agent.submit_event(scenario.findings_event)

        def remaining() -> float:
            return max(0.1, deadline - time.monotonic())

        if not er.wait(lambda: any(n.activation.team == team for n, _ in er.notices), remaining()):
            raise HandoffDemoError(
                f"the ER was not pre-alerted ({team}) within {options.timeout_s:.0f} s"
            )
        while time.monotonic() < deadline and (
            warp.remaining or agent.depth or agent.counters.confirmed < agent.counters.accepted
        ):
            time.sleep(0.1)  # let the last vitals reach the database before the handover
        agent.submit_event(scenario.handover(now_utc()))
        if not er.wait(lambda: er.receipt is not None, remaining()):
            raise HandoffDemoError("the handoff Bundle did not reach the ER")
    finally:
        agent.stop()
    measured = [
        record.activation_to_notification_ms
        for record in handoff.notifications
        if record.pathway == options.pathway and record.status == "delivered"
    ]
    if not measured:
        raise HandoffDemoError("the handoff service recorded no delivered notification")
    return {
        "incident_id": patient.incident,
        "pathway": options.pathway,
        "activated": sorted({n.activation.team for n, _ in er.notices}),
        "activation_to_notification_ms": round(measured[0], 1),
        "bundle": str(er.bundle_path),
    }
