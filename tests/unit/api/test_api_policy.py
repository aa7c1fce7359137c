"""Pure parts of the API: role policy, resolution choice, silence, Prometheus rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest_service.api.access import (
    hospital_scope,
    may_read_subject,
    may_see_hospital,
    visible_subjects,
)
from ingest_service.api.resolution import choose_resolution
from ingest_service.api.routers.gateways import is_silent
from ingest_service.api.routers.health import Sample, render
from ingest_service.api.tokens import Principal


@pytest.mark.parametrize(
    ("who", "subject", "allowed"),
    [
        (Principal("u1", "patient", subject="p1"), "p1", True),
        (Principal("u1", "patient", subject="p1"), "p2", False),
        (Principal("dr", "doctor", subjects=("p1",)), "p1", True),
        (Principal("dr", "doctor", subjects=("p1",)), "p2", False),
        (Principal("dr", "doctor"), "p2", True),  # no contract claim: not restricted
        (Principal("er1", "er"), "p2", True),
        (Principal("ops", "admin"), "p2", True),
        (Principal("svc", "service"), "p2", True),
        (Principal("gw-1", "device", gateway="gw-1"), "p2", False),  # no patient data at all
        # A hospital's ER reads its incidents' subjects, which only the database knows:
        # the pure answer is "none" (fail closed), deps.readable_subjects looks them up.
        (Principal("er2", "er", hospital="h-a"), "p2", False),
    ],
)
def test_who_may_read_which_subject(who: Principal, subject: str, allowed: bool) -> None:
    assert may_read_subject(who, subject) is allowed


def test_a_patient_token_without_subject_sees_nothing() -> None:
    assert visible_subjects(Principal("u1", "patient")) == ()


def test_an_er_token_with_a_hospital_sees_that_hospitals_incidents_only() -> None:
    scoped, everywhere = Principal("er1", "er", hospital="h-a"), Principal("er2", "er")
    assert hospital_scope(scoped) == "h-a" and hospital_scope(everywhere) is None
    assert may_see_hospital(scoped, "h-a")
    assert not may_see_hospital(scoped, "h-b")
    assert not may_see_hospital(scoped, None)  # not routed yet: not this hospital's
    assert may_see_hospital(everywhere, "h-b") and may_see_hospital(everywhere, None)
    assert may_see_hospital(Principal("ops", "admin"), "h-b")


def test_auto_resolution_keeps_answers_under_the_limit() -> None:
    hour, day, week, month = (
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(weeks=1),
        timedelta(days=30),
    )
    assert choose_resolution(300, month, 1, 2000) == "raw"  # sparse: raw over a month
    assert choose_resolution(3600, hour, 1, 2000) == "5min"  # 1 Hz for an hour
    assert choose_resolution(86_400, day, 1, 2000) == "5min"  # 289 buckets
    assert choose_resolution(604_800, week, 1, 2000) == "1h"  # 2017 five-minute buckets
    assert choose_resolution(10**6, month, 1, 2000) == "1h"


def test_auto_resolution_counts_every_series() -> None:
    day = timedelta(days=1)
    assert choose_resolution(10**5, day, 6, 2000) == "5min"  # 6 x 289 = 1734
    assert choose_resolution(10**5, day, 7, 2000) == "1h"  # 7 x 289 = 2023


def test_silence_is_a_multiple_of_the_cadence() -> None:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert not is_silent(now - timedelta(seconds=14), now, 5.0, 3.0)
    assert is_silent(now - timedelta(seconds=16), now, 5.0, 3.0)


def test_prometheus_text_has_help_type_and_nan_for_unknown() -> None:
    text = render([Sample("a_total", "counter", "A.", 3), Sample("b", "gauge", "B.", None)])
    assert text == (
        "# HELP a_total A.\n# TYPE a_total counter\na_total 3.0\n"
        "# HELP b B.\n# TYPE b gauge\nb NaN\n"
    )
