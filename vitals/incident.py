"""The pre-hospital incident contract (issue 9): incident, crew events, activations, receipts.

An ambulance crew opens an *incident* for one patient, who may be unidentified (a temporary
``tmp-…`` subject from ``ingest_service.identity.temporary_subject``, merged with the master
patient index later). Readings of that patient carry the incident id (``Reading.incident``);
what the crew records by hand (complaint, timeline, pathway findings, the structured handover)
travels as :class:`IncidentEvent` on ``vs/v1/gw/{gateway}/events``. The receiving side folds
events into an :class:`Incident` (:meth:`Incident.apply`, pure), runs the pathway rules
(``alert_rules.pathways``) and records :class:`PathwayActivation` s; the hospital confirms the
FHIR handoff Bundle with a :class:`HandoffReceipt`.

Like every contract model: frozen pydantic, ``extra="forbid"``, timezone-aware datetimes
normalised to UTC, ``schema_version``. Free text (complaint, ATMIST, SBAR) is clinical prose the
crew types; it must never hold a name or a national ID (the FHIR builder scrubs ID-shaped
numbers as a second line of defence, it cannot find names).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from vitals.models import SCHEMA_VERSION, Identifier, utc

#: The shared workflows of issue 9 ("stroke, STEMI/chest pain, trauma, maternal, sepsis").
Pathway = Literal["stroke", "stemi", "trauma", "maternal", "sepsis"]
PATHWAYS: tuple[Pathway, ...] = ("stroke", "stemi", "trauma", "maternal", "sepsis")

#: The receiving team each pathway pre-alerts.
Team = Literal["stroke_team", "cath_lab", "trauma_team", "obstetric_team", "sepsis_team"]
TEAM_OF: dict[Pathway, Team] = {
    "stroke": "stroke_team",
    "stemi": "cath_lab",
    "trauma": "trauma_team",
    "maternal": "obstetric_team",
    "sepsis": "sepsis_team",
}

ShortText = Annotated[str, Field(min_length=1, max_length=2000)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


class Timeline(_Frozen):
    """The clock of an ambulance incident (each step optional until it happens).

    ``eta`` is the crew's estimate of arrival at the receiving hospital; the others are facts.
    """

    call: AwareDatetime | None = None
    on_scene: AwareDatetime | None = None
    depart: AwareDatetime | None = None
    eta: AwareDatetime | None = None
    arrival: AwareDatetime | None = None
    handover: AwareDatetime | None = None

    @field_validator("call", "on_scene", "depart", "eta", "arrival", "handover")
    @classmethod
    def _to_utc(cls, moment: datetime | None) -> datetime | None:
        return _utc_or_none(moment)

    def merged(self, update: Timeline) -> Timeline:
        """This timeline with every step ``update`` sets replaced (a later entry wins)."""
        return self.model_copy(update=update.model_dump(exclude_none=True))


class Findings(_Frozen):
    """What the crew found that the monitor cannot measure: the pathway rules' inputs.

    ``None`` always means "not assessed" (never "negative"): the rules report it as missing.
    """

    age_years: int | None = Field(default=None, ge=0, le=130)
    #: BE-FAST screen (Balance, Eyes, Face, Arm, Speech, Time; Aroor et al., Stroke 2017).
    befast_positive: bool | None = None
    #: Last time the patient was seen well (stroke onset for treatment windows).
    last_known_well: AwareDatetime | None = None
    #: 12-lead ECG read as ST-elevation MI (by the crew or a remote reader).
    st_elevation: bool | None = None
    #: The 12-lead's acquisition time and a reference to its snippet (waveform topic).
    ecg_12lead_at: AwareDatetime | None = None
    ecg_12lead_ref: Identifier | None = None
    #: First medical contact: when the crew reached the patient (STEMI FMC-to-device clock).
    first_medical_contact: AwareDatetime | None = None
    #: GCS motor response, 1-6 (6 = obeys commands); the 2021 field triage uses motor < 6.
    gcs_motor: int | None = Field(default=None, ge=1, le=6)
    #: The patient is injured (a trauma mechanism): field triage applies to injured patients.
    injured: bool | None = None
    pregnant: bool | None = None
    postpartum: bool | None = None
    gestation_weeks: int | None = Field(default=None, ge=0, le=45)
    seizure: bool | None = None
    haemorrhage: bool | None = None
    suspected_infection: bool | None = None

    @field_validator("last_known_well", "ecg_12lead_at", "first_medical_contact")
    @classmethod
    def _to_utc(cls, moment: datetime | None) -> datetime | None:
        return _utc_or_none(moment)

    def merged(self, update: Findings) -> Findings:
        """These findings with every finding ``update`` records replaced (a later one wins)."""
        return self.model_copy(update=update.model_dump(exclude_none=True))


class Atmist(_Frozen):
    """The ATMIST handover (UK ambulance services; JRCALC): Age, Time of onset,
    Mechanism (or medical complaint), Injuries (or information), Signs, Treatment."""

    age_years: int | None = Field(default=None, ge=0, le=130)
    time_of_onset: AwareDatetime | None = None
    mechanism: ShortText | None = None
    injuries: ShortText | None = None
    #: Signs as the crew summarises them; the coded vitals travel as Observations beside it.
    signs: ShortText | None = None
    treatment: ShortText | None = None

    @field_validator("time_of_onset")
    @classmethod
    def _to_utc(cls, moment: datetime | None) -> datetime | None:
        return _utc_or_none(moment)


class Sbar(_Frozen):
    """SBAR (Situation, Background, Assessment, Recommendation), the hand-off frame of the
    Joint Commission / IHI for any clinical communication."""

    situation: ShortText | None = None
    background: ShortText | None = None
    assessment: ShortText | None = None
    recommendation: ShortText | None = None


EventKind = Literal["open", "update", "findings", "handover"]


class IncidentEvent(_Frozen):
    """What a crew (through its gateway) publishes on ``vs/v1/gw/{gateway}/events``.

    - ``open``: a new incident; ``subject`` is required (a ``tmp-…`` one when unidentified).
    - ``update``: complaint, suspected pathway, timeline steps, ATMIST/SBAR drafts.
    - ``findings``: pathway findings (BE-FAST, last-known-well, ST elevation, GCS motor, ...).
    - ``handover``: the patient was handed over; the final ATMIST/SBAR may come with it.

    ``event_id`` is unique per event: QoS 1 may deliver an event twice and the receiver keeps
    it once. ``time`` is when the crew recorded it.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Identifier
    kind: EventKind
    incident: Identifier
    gateway: Identifier
    time: AwareDatetime
    subject: Identifier | None = None
    chief_complaint: ShortText | None = None
    pathway: Pathway | None = None
    timeline: Timeline | None = None
    findings: Findings | None = None
    atmist: Atmist | None = None
    sbar: Sbar | None = None

    @field_validator("time")
    @classmethod
    def _to_utc(cls, moment: datetime) -> datetime:
        return utc(moment)

    @model_validator(mode="after")
    def _open_names_the_patient(self) -> Self:
        if self.kind == "open" and self.subject is None:
            raise ValueError("an 'open' event needs the subject (a tmp-… id when unidentified)")
        return self


class Incident(_Frozen):
    """One ambulance incident as the receiving side knows it (the fold of its events)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: Identifier
    gateway: Identifier
    subject: Identifier
    opened_at: AwareDatetime
    chief_complaint: ShortText | None = None
    #: The suspected pathway the crew chose; activations come from the rules, not from this.
    pathway: Pathway | None = None
    timeline: Timeline = Timeline()
    findings: Findings = Findings()
    atmist: Atmist | None = None
    sbar: Sbar | None = None

    @field_validator("opened_at")
    @classmethod
    def _to_utc(cls, moment: datetime) -> datetime:
        return utc(moment)

    @classmethod
    def open(cls, event: IncidentEvent) -> Incident:
        """The incident an ``open`` event starts."""
        if event.kind != "open" or event.subject is None:
            raise ValueError("only an 'open' event with a subject opens an incident")
        blank = cls(
            id=event.incident,
            gateway=event.gateway,
            subject=event.subject,
            opened_at=event.time,
        )
        return blank.apply(event)

    def apply(self, event: IncidentEvent) -> Incident:
        """This incident with ``event`` folded in (pure; fields the event omits are kept)."""
        if event.incident != self.id:
            raise ValueError(f"event for incident {event.incident!r} applied to {self.id!r}")
        changes: dict[str, object] = {}
        if event.chief_complaint is not None:
            changes["chief_complaint"] = event.chief_complaint
        if event.pathway is not None:
            changes["pathway"] = event.pathway
        if event.timeline is not None:
            changes["timeline"] = self.timeline.merged(event.timeline)
        if event.findings is not None:
            changes["findings"] = self.findings.merged(event.findings)
        if event.atmist is not None:
            changes["atmist"] = event.atmist
        if event.sbar is not None:
            changes["sbar"] = event.sbar
        if event.kind == "handover" and self.timeline.handover is None:
            timeline = changes.get("timeline", self.timeline)
            assert isinstance(timeline, Timeline)
            if timeline.handover is None:
                changes["timeline"] = timeline.model_copy(update={"handover": event.time})
        # model_copy skips validation; re-validate so the result is a checked contract model.
        return Incident.model_validate({**self.model_dump(), **_dumped(changes)})


def _dumped(changes: dict[str, object]) -> dict[str, object]:
    return {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in changes.items()}


class PathwayActivation(_Frozen):
    """A pathway the rules activated for an incident: which team, why, by when."""

    schema_version: Literal[1] = SCHEMA_VERSION
    incident: Identifier
    pathway: Pathway
    team: Team
    reasons: tuple[str, ...] = Field(min_length=1)
    #: Inputs the rule could not check (e.g. glucose not measured for stroke).
    missing: tuple[str, ...] = ()
    #: What the team should know or do first (e.g. "thrombolysis window ends 14:32 UTC").
    advice: tuple[str, ...] = ()
    guideline: str
    time: AwareDatetime
    #: A clock the team works against (STEMI: first medical contact + 90 min to device).
    deadline: AwareDatetime | None = None

    @field_validator("time", "deadline")
    @classmethod
    def _to_utc(cls, moment: datetime | None) -> datetime | None:
        return _utc_or_none(moment)


class HandoffReceipt(_Frozen):
    """The receiving hospital's answer to a handoff Bundle (acknowledged and logged)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    incident: Identifier
    bundle_id: str = Field(min_length=1, max_length=64)
    status: Literal["accepted", "rejected"]
    received_by: ShortText
    received_at: AwareDatetime
    detail: ShortText | None = None

    @field_validator("received_at")
    @classmethod
    def _to_utc(cls, moment: datetime) -> datetime:
        return utc(moment)


__all__ = [
    "PATHWAYS",
    "TEAM_OF",
    "Atmist",
    "EventKind",
    "Findings",
    "HandoffReceipt",
    "Incident",
    "IncidentEvent",
    "Pathway",
    "PathwayActivation",
    "Sbar",
    "Team",
    "Timeline",
]
