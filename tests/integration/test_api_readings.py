"""Subjects, range queries with downsampling, latest values, and their audit rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

from test_api_support import (
    ALPHA,
    BETA,
    NOW,
    T0,
    alpha_spo2,
    api_client,
    audit_rows,
    bearer,
    extra_readings,
    write_readings,
)

RANGE = {"start": T0.isoformat(), "end": NOW.isoformat()}


def _bucket(time: str) -> datetime:
    moment = datetime.fromisoformat(time)
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


def test_raw_and_five_minute_answers_agree(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2() + extra_readings())
    with api_client(database_url, tmp_path) as client:
        doctor = bearer(client, "doctor", "dr-li", subjects=[ALPHA])
        url = f"/api/v1/subjects/{ALPHA}/readings"
        raw = client.get(
            url, params={**RANGE, "metric": "spo2", "resolution": "raw"}, headers=doctor
        )
        five = client.get(
            url, params={**RANGE, "metric": "spo2", "resolution": "5min"}, headers=doctor
        )
        hour = client.get(
            url, params={**RANGE, "metric": "spo2", "resolution": "1h"}, headers=doctor
        )
    assert raw.status_code == five.status_code == hour.status_code == 200
    raw_points = raw.json()["points"]
    assert raw.json()["resolution"] == "raw" and len(raw_points) == 120
    assert raw_points[0] == {
        "time": "2026-11-25T10:00:00Z", "metric": "spo2", "value": 90.0, "unit": "%",
        "no_value": None, "quality": raw_points[0]["quality"], "min": None, "max": None, "n": None,
    }  # fmt: skip
    by_bucket: dict[datetime, list[float]] = defaultdict(list)
    for point in raw_points:
        by_bucket[_bucket(point["time"])].append(point["value"])
    buckets = five.json()["points"]
    assert five.json()["resolution"] == "5min" and len(buckets) == 12
    for bucket in buckets:
        values = by_bucket[datetime.fromisoformat(bucket["time"])]
        assert bucket["n"] == len(values) == 10
        assert bucket["value"] == sum(values) / len(values)
        assert (bucket["min"], bucket["max"]) == (min(values), max(values))
    (hourly,) = hour.json()["points"]
    assert hourly["n"] == 120 and hourly["value"] == 94.5


def test_auto_resolution_stays_under_the_point_budget(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2())
    with api_client(database_url, tmp_path, api_max_points=50) as client:
        admin = bearer(client, "admin", "ops")
        url = f"/api/v1/subjects/{ALPHA}/readings"
        hour = client.get(url, params={**RANGE, "metric": "spo2"}, headers=admin).json()
        tail = client.get(
            url, params={"start": "2026-11-25T10:50:00Z", "end": NOW.isoformat()}, headers=admin
        ).json()
        bad = client.get(
            url, params={"start": NOW.isoformat(), "end": T0.isoformat()}, headers=admin
        )
        naive = client.get(url, params={"start": "2026-11-25T10:00:00"}, headers=admin)
    assert hour["resolution"] == "5min" and len(hour["points"]) <= 50  # 120 raw > 50
    assert tail["resolution"] == "raw" and len(tail["points"]) == 20
    assert bad.status_code == 422 and naive.status_code == 422


def test_limit_truncates_and_says_so(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2())
    with api_client(database_url, tmp_path) as client:
        admin = bearer(client, "admin", "ops")
        body = client.get(
            f"/api/v1/subjects/{ALPHA}/readings",
            params={**RANGE, "resolution": "raw", "limit": 7},
            headers=admin,
        ).json()
    assert len(body["points"]) == 7 and body["truncated"] is True


def test_latest_value_per_metric(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2() + extra_readings())
    with api_client(database_url, tmp_path) as client:
        me = bearer(client, "patient", "u-alpha", subject=ALPHA)
        body = client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=me).json()
        empty = client.get("/api/v1/subjects/pnobody/latest", headers=bearer(client, "er", "er-1"))
    assert body["subject"] == ALPHA
    assert [(v["metric"], v["value"], v["time"]) for v in body["latest"]] == [
        ("heart_rate", 74.0, "2026-11-25T10:50:00Z"),
        ("spo2", 99.0, "2026-11-25T10:59:30Z"),
    ]
    assert empty.json()["latest"] == []


def test_subjects_lists_who_has_readings_with_paging(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2() + extra_readings())
    with api_client(database_url, tmp_path) as client:
        admin = bearer(client, "admin", "ops")
        first = client.get("/api/v1/subjects", params={"limit": 1}, headers=admin).json()
        second = client.get(
            "/api/v1/subjects", params={"limit": 1, "after": first["next_after"]}, headers=admin
        ).json()
    assert first["subjects"] == [
        {"subject": ALPHA, "metrics": ["heart_rate", "spo2"],
         "last_reading_at": "2026-11-25T10:59:30Z"}
    ]  # fmt: skip
    assert first["next_after"] == ALPHA
    assert [s["subject"] for s in second["subjects"]] == [BETA]
    assert second["next_after"] is None


def test_every_read_of_patient_data_is_audited(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2())
    with api_client(database_url, tmp_path) as client:
        doctor = bearer(client, "doctor", "dr-li")
        client.get(
            f"/api/v1/subjects/{ALPHA}/readings",
            params={**RANGE, "metric": "spo2"},
            headers={**doctor, "X-Purpose": "ward round"},
        )
        client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=doctor)
        client.get("/api/v1/subjects", headers=doctor)
        client.get("/api/v1/alerts", headers=doctor)
    rows = [r for r in audit_rows(database_url) if r[1] == "read"]
    assert [(r[0], r[2]) for r in rows] == [
        ("doctor:dr-li", f"subject/{ALPHA}/readings"),
        ("doctor:dr-li", f"subject/{ALPHA}/latest"),
        ("doctor:dr-li", "subjects"),
        ("doctor:dr-li", "alerts"),
    ]
    detail = rows[0][3]
    assert detail["subject"] == ALPHA and detail["role"] == "doctor"
    assert detail["purpose"] == "ward round" and detail["returned"] == 120
    assert detail["query"]["metric"] == "spo2" and detail["query"]["start"] == T0.isoformat()
    assert detail["token"]  # the jti: which token did it


def test_hostile_inputs_get_4xx_never_5xx(database_url: str, tmp_path: Path) -> None:
    """What schemathesis would try: NUL bytes, extreme times, non-identifiers."""
    with api_client(database_url, tmp_path) as client:
        admin = bearer(client, "admin", "ops")
        requests = [
            ("/api/v1/subjects", {"after": "a\x00b"}),
            ("/api/v1/alerts", {"state": "\x00"}),
            ("/api/v1/audit", {"actor": "x\x00"}),
            ("/api/v1/dead-letters", {"reason": "\x00", "before": str(10**30)}),
            (f"/api/v1/subjects/{ALPHA}/readings", {"end": "0001-01-01T00:00:00Z"}),
            (f"/api/v1/subjects/{ALPHA}/readings", {"start": "9999-12-31T23:59:59Z"}),
            ("/api/v1/subjects/has%20space/latest", {}),
        ]
        for path, params in requests:
            response = client.get(path, params=params, headers=admin)
            assert 400 <= response.status_code < 500, (path, params, response.text)
