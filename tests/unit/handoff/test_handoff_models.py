"""The incident contract (vitals.incident): frozen, strict, UTC, folded from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from vitals import decode, encode
from vitals.incident import (
    Atmist,
    Findings,
    HandoffReceipt,
    Incident,
    IncidentEvent,
    PathwayActivation,
    Timeline,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))


def _open(**extra: object) -> IncidentEvent:
    return IncidentEvent(
        event_id="e1",
        kind="open",
        incident="inc-1",
        gateway="amb-1",
        time=T0,
        subject="tmp-aaaaaaaaaaaaaaaaaaaaaaaaaa",
        **extra,
    )


def test_open_needs_a_subject_and_extra_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        IncidentEvent(event_id="e1", kind="open", incident="i", gateway="g", time=T0)
    with pytest.raises(ValidationError):
        IncidentEvent.model_validate(
            {
                "event_id": "e",
                "kind": "update",
                "incident": "i",
                "gateway": "g",
                "time": T0.isoformat(),
                "national_id": "x",
            }
        )


def test_naive_datetimes_are_refused_and_aware_ones_normalised_to_utc() -> None:
    with pytest.raises(ValidationError):
        Timeline(call=datetime(2026, 1, 1, 12, 0))
    assert Timeline(call=datetime(2026, 1, 1, 20, 0, tzinfo=CST)).call == datetime(
        2026, 1, 1, 12, 0, tzinfo=UTC
    )


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Findings().pregnant = True  # type: ignore[misc]


def test_events_fold_into_the_incident_later_entries_win_and_missing_ones_are_kept() -> None:
    incident = Incident.open(_open(findings=Findings(age_years=70), pathway="stroke"))
    lkw = T0 - timedelta(hours=1)
    incident = incident.apply(
        IncidentEvent(
            event_id="e2",
            kind="findings",
            incident="inc-1",
            gateway="amb-1",
            time=T0,
            findings=Findings(befast_positive=True, last_known_well=lkw),
            timeline=Timeline(depart=T0),
        )
    )
    assert incident.findings.age_years == 70 and incident.findings.befast_positive
    assert incident.timeline.depart == T0 and incident.pathway == "stroke"
    handed = incident.apply(
        IncidentEvent(
            event_id="e3",
            kind="handover",
            incident="inc-1",
            gateway="amb-1",
            time=T0 + timedelta(minutes=30),
            atmist=Atmist(age_years=70),
        )
    )
    assert handed.timeline.handover == T0 + timedelta(minutes=30)
    assert handed.atmist is not None and handed.atmist.age_years == 70


def test_an_event_of_another_incident_is_refused() -> None:
    incident = Incident.open(_open())
    other = IncidentEvent(event_id="x", kind="update", incident="inc-2", gateway="g", time=T0)
    with pytest.raises(ValueError, match="applied to"):
        incident.apply(other)


def test_events_round_trip_through_the_codec() -> None:
    event = _open(findings=Findings(gcs_motor=5, injured=True))
    assert decode(encode(event), IncidentEvent) == event


def test_activation_needs_a_reason_and_receipt_a_status() -> None:
    with pytest.raises(ValidationError):
        PathwayActivation(
            incident="i", pathway="stroke", team="stroke_team", reasons=(), guideline="g", time=T0
        )
    with pytest.raises(ValidationError):
        HandoffReceipt.model_validate(
            {
                "incident": "i",
                "bundle_id": "b",
                "status": "maybe",
                "received_by": "ER",
                "received_at": T0.isoformat(),
            }
        )
