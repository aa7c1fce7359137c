"""The fast batch decoder (vitals.wire) gives the contract models' answer on every payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vitals.wire
from vitals import Batch, PayloadError, Reading, decode
from vitals.wire import WireBatch, decode_batch

GOOD = {
    "subject": "sim-s1",
    "device": "sim-oxi-1",
    "metric": "spo2",
    "value": 97.0,
    "unit": "%",
    "time": "2026-11-25T10:00:00Z",
    "seq": 3,
    "source": "sim",
}

# Each entry replaces (or, with None, removes) one field: near misses of the contract and
# inputs where the two decoders' leniency could differ.
VARIANTS: dict[str, list[Any]] = {
    "subject": ["sim-s1\n", "", "a b", "x" * 128, "x" * 129, "sim/1", 7, None],
    "device": ["dev:1.2_3-4", "-bad", None],
    "metric": ["heart_rate", "spo3", "SPO2", 1, None],
    "value": [90, "90", "90.5", True, None, 1e308, -0.0, [97], 1e400],
    "no_value": ["NaN", "NRes", "sensor_off", "nan", None],
    "unit": ["%", "/min", "", None],
    "time": [
        "2026-11-25T12:00:00+02:00",
        "2026-11-25T10:00:00",
        "2026-11-25T10:00:00.123456Z",
        "2026-11-25T10:00:00.1234567Z",
        "2026-11-25 10:00:00Z",
        "2026-11-25T10:00:00z",
        "2026-11-25",
        1764064800,
        "yesterday",
        None,
    ],
    "seq": [0, -1, 2.0, 2.5, "4", 2**63, None],
    "source": ["ble", "hl7", "BLE", "usb", None],
    "quality": [[], ["artifact"], ["a", 1], "artifact", None],
    "original_value": [100.0, "100", None],
    "original_unit": ["mmol/L", 5, None],
    "incident": ["inc-1", "inc 1", None],
    "schema_version": [1, 2, "1", None],
    "extra": [1],
}


def payload(readings: list[dict[str, Any]], **batch: Any) -> bytes:
    body: dict[str, Any] = {
        "schema_version": 1,
        "batch_id": "b1",
        "gateway": "gw-1",
        "sent_at": "2026-11-25T10:00:01Z",
        "readings": readings,
    }
    body.update(batch)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def variant(field: str, value: Any) -> dict[str, Any]:
    reading = dict(GOOD)
    if value is None:
        reading.pop(field, None)
    else:
        reading[field] = value
    if field == "no_value" and value is not None:
        reading.pop("value")
    return reading


def answer(decoder: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return ("ok", decoder(raw))
    except PayloadError as exc:
        return ("error", (exc.kind, exc.detail))


def fields(batch: Batch | WireBatch) -> tuple[Any, ...]:
    readings = tuple(
        tuple((name, getattr(r, name)) for name in Reading.model_fields) for r in batch.readings
    )
    return (batch.batch_id, batch.gateway, batch.sent_at, batch.schema_version, readings)


def assert_same_answer(raw: bytes) -> None:
    reference = answer(lambda b: decode(b, Batch), raw)
    fast = answer(decode_batch, raw)
    assert fast[0] == reference[0], (raw, reference, fast)
    if reference[0] == "error":
        assert fast[1] == reference[1]
        return
    assert fields(fast[1]) == fields(reference[1])
    assert all(r.time.tzinfo is UTC for r in fast[1].readings)


@pytest.mark.parametrize(
    ("field", "value"), [(f, v) for f, values in VARIANTS.items() for v in values]
)
def test_each_near_miss_gets_the_models_answer(field: str, value: Any) -> None:
    assert_same_answer(payload([variant(field, value)]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([(f, v) for f, values in VARIANTS.items() for v in values]),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(
        [{}, {"sent_at": "2026-11-25T10:00:01"}, {"gateway": "gw 1"}, {"batch_id": "b\n"}]
    ),
)
def test_generated_batches_get_the_models_answer(
    changes: list[tuple[str, Any]], batch: dict[str, Any]
) -> None:
    readings = [variant(f, v) for f, v in changes]
    readings.append(dict(GOOD, seq=9))
    assert_same_answer(payload(readings, **batch))


def test_a_valid_batch_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were every payload handed to pydantic, the decoder would be right and no faster."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the slow path decoded a valid payload")

    monkeypatch.setattr(vitals.wire, "decode", refuse)
    offset = variant("time", "2026-11-25T12:00:00+02:00")
    batch = decode_batch(payload([GOOD, offset, variant("no_value", "NRes")]))
    assert [r.time for r in batch.readings] == [datetime(2026, 11, 25, 10, tzinfo=UTC)] * 3
    assert batch.readings[2].value is None


def test_oversized_empty_and_non_json_payloads_get_the_models_errors() -> None:
    assert_same_answer(payload([]))
    assert_same_answer(b"\xff\xfe not json")
    assert_same_answer(b"{}")
    assert_same_answer(payload([GOOD] * 10_000))  # over MAX_PAYLOAD_BYTES: too_large
