"""The vitals contract: catalogue, Reading invariants, codec and topics."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vitals import (
    CATALOGUE,
    Batch,
    PayloadError,
    Reading,
    UnknownMetricError,
    by_mdc_code,
    decode,
    encode,
    gateway_topic,
    metric,
    parse_broker_url,
    parse_topic,
    subscription,
)
from vitals.errors import VitalsError

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

CONTRACT_UNITS = {
    # CONTRACTS.md, "Metric names (catalogue, canonical units)"
    "heart_rate": "/min",
    "pulse_rate": "/min",
    "rr_interval": "ms",
    "energy_expended": "kJ",
    "bp_systolic": "mm[Hg]",
    "bp_diastolic": "mm[Hg]",
    "bp_mean": "mm[Hg]",
    "body_temperature": "Cel",
    "glucose": "mmol/L",
    "spo2": "%",
    "perfusion_index": "%",
    "respiratory_rate": "/min",
    "weight": "kg",
    "height": "m",
    "bmi": "kg/m2",
    "etco2": "mm[Hg]",
    "fio2": "%",
    "supplemental_o2": "{bool}",
    "gcs": "{score}",
}


def reading(**changes: object) -> Reading:
    fields: dict[str, object] = {
        "subject": "sim-s1",
        "device": "dev-1",
        "metric": "spo2",
        "value": 95.0,
        "unit": "%",
        "time": T0,
        "source": "sim",
    }
    fields.update(changes)
    return Reading.model_validate(fields)


@pytest.mark.parametrize(("name", "unit"), sorted(CONTRACT_UNITS.items()))
def test_every_contract_metric_is_catalogued_with_its_canonical_unit(name: str, unit: str) -> None:
    assert metric(name).unit == unit


def test_catalogue_ranges_are_ordered_and_mdc_codes_unique() -> None:
    codes = [spec.mdc_code for spec in CATALOGUE.values() if spec.mdc_code is not None]
    assert len(codes) == len(set(codes))
    for spec in CATALOGUE.values():
        assert spec.plausible_min < spec.plausible_max, spec.name


def test_mdc_lookup_finds_spo2() -> None:
    # IEEE 11073-10101: MDC_PULS_OXIM_SAT_O2 = 2::19384 = 150456
    spec = by_mdc_code(150456)
    assert spec is not None and spec.name == "spo2"
    assert by_mdc_code(1) is None


def test_gcs_plausible_range_is_the_glasgow_scale() -> None:
    spec = metric("gcs")
    assert (spec.plausible_min, spec.plausible_max) == (3, 15)


def test_unknown_metric_is_a_typed_error_naming_the_known_ones() -> None:
    with pytest.raises(UnknownMetricError, match="heart_rate"):
        metric("pulse")


def test_reading_time_is_normalised_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    r = reading(time=datetime(2026, 11, 25, 16, 0, tzinfo=beijing))
    assert r.time == T0 and r.time.tzinfo == UTC


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"time": datetime(2026, 11, 25, 8, 0)}, "timezone"),  # naive on purpose
        ({"unit": "mmHg", "metric": "bp_systolic"}, "canonical unit"),
        ({"value": None}, "exactly one"),
        ({"value": 95.0, "no_value": "NaN"}, "exactly one"),
        ({"value": math.nan}, "finite"),
        ({"value": math.inf}, "finite"),
        ({"metric": "spo3"}, "not in the catalogue"),
        ({"subject": "a/b"}, "pattern"),
        ({"device": "dev+1"}, "pattern"),
        ({"seq": -1}, "greater than or equal"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_reading_rejects_what_the_contract_forbids(changes: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        reading(**changes)


def test_a_sentinel_is_no_value_never_zero() -> None:
    r = reading(value=None, no_value="NRes")
    assert r.value is None and r.no_value == "NRes"


def test_reading_is_frozen() -> None:
    with pytest.raises(ValidationError):
        reading().value = 1.0  # type: ignore[misc]


def test_batch_round_trips_through_the_codec() -> None:
    batch = Batch(
        batch_id="b1",
        gateway="gw1",
        sent_at=T0,
        readings=(reading(), reading(metric="heart_rate", unit="/min", value=61)),
    )
    assert decode(encode(batch), Batch) == batch


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"\xff\xfe", "malformed"),
        (b"{not json", "malformed"),
        (b'{"batch_id": "b1"}', "schema"),
        (b"x" * 2_000_000, "too_large"),
    ],
)
def test_codec_rejects_bad_payloads_with_a_kind(payload: bytes, kind: str) -> None:
    with pytest.raises(PayloadError) as caught:
        decode(payload, Batch)
    assert caught.value.kind == kind
    assert caught.value.as_dict()["detail"]


@given(st.binary(max_size=512))
def test_codec_never_raises_anything_but_payload_error(payload: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode(payload, Batch)


def test_topics_round_trip_and_refuse_wildcards_in_ids() -> None:
    topic = gateway_topic("gw-7", "readings", "vs")
    assert topic == "vs/v1/gw/gw-7/readings"
    assert parse_topic(topic, "vs") == ("gw-7", "readings")
    assert subscription("status", "t1") == "t1/v1/gw/+/status"
    for bad in ("a/b", "a+b", "a#"):
        with pytest.raises(ValueError, match="may not contain"):
            gateway_topic(bad, "readings")
    for bad_topic in (
        "vs/v1/gw/x",
        "vs/v2/gw/x/readings",
        "other/v1/gw/x/readings",
        "vs/v1/gw/x/unknown",
    ):
        with pytest.raises(PayloadError):
            parse_topic(bad_topic, "vs")


def test_broker_urls() -> None:
    assert parse_broker_url("mqtt://127.0.0.1").port == 1883
    assert parse_broker_url("mqtts://broker.example:9000").tls
    with pytest.raises(VitalsError, match="VITALSTREAM_BROKER_URL"):
        parse_broker_url("http://x")


def test_unknown_metric_inside_a_payload_is_a_payload_error_not_a_crash() -> None:
    good = encode(Batch(batch_id="b1", gateway="gw1", sent_at=T0, readings=(reading(),)))
    with pytest.raises(PayloadError, match="spo3"):
        decode(good.replace(b'"spo2"', b'"spo3"'), Batch)


def test_a_no_value_reading_survives_the_wire() -> None:
    """The codec drops None fields; a no-value reading must still decode."""
    batch = Batch(
        batch_id="b1",
        gateway="gw1",
        sent_at=T0,
        readings=(reading(value=None, no_value="sensor_off"),),
    )
    assert decode(encode(batch), Batch) == batch


def test_broker_urls_carry_credentials_but_never_print_the_password() -> None:
    address = parse_broker_url("mqtts://gw%2D7:s3cret@broker.example")
    assert (address.username, address.password, address.port) == ("gw-7", "s3cret", 8883)
    assert "s3cret" not in address.url and "s3cret" not in repr(address)
