"""decode_oru / split_messages against real monitor messages (tests/fixtures/hl7/SOURCE.md).

Patient data in every fixture is synthetic; see SOURCE.md for what was replaced.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import DecodeError, MalformedError, UnsupportedError
from firmware_bridge.hl7 import OruResult, decode_all, decode_oru, mask_identifier, split_messages
from firmware_bridge.measurement import Measurement
from firmware_bridge.mllp import frame

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"


def _load(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _decode(name: str) -> OruResult:
    [result] = decode_all(_load(name))
    return result


def _by_metric(result: OruResult) -> dict[str, list[Measurement]]:
    out: dict[str, list[Measurement]] = {}
    for item in result.measurements:
        out.setdefault(item.metric, []).append(item)
    return out


def _reasons(result: OruResult) -> dict[str, str]:
    return {item.code: item.reason for item in result.ignored}


# -- real messages ------------------------------------------------------------------------------


def test_comen_nc5_spot_check() -> None:
    """Comen NC5 spot check "captured verbatim from the NC5" (public NC5 listener test_parse.py).

    Cuff pressure codes (MDC_PRESS_CUFF_*), MDC_TEMP, +0800 offsets, reference ranges in OBX-7,
    99COMEN context rows, and 0 height/weight meaning "not entered".
    """
    result = _decode("comen_nc5_spot_check.hl7")
    metrics = _by_metric(result)
    assert result.control_id == "20260726231332.11090007"
    assert result.processing_id == "P"
    systolic = metrics["bp_systolic"][0]
    assert systolic.value == 120.0
    assert systolic.unit == "mm[Hg]"
    assert systolic.time == datetime(2026, 7, 26, 15, 13, 31, tzinfo=UTC)
    assert systolic.extra["utc_offset"] == "+0800"
    assert systolic.extra["reference_range"] == "90^160"
    assert systolic.extra["channel"] == "1.1.9.150301"
    assert systolic.extra["code"] == "150301^MDC_PRESS_CUFF_SYS^MDC"
    assert metrics["bp_diastolic"][0].value == 80.0
    assert metrics["bp_mean"][0].value == 90.0
    assert metrics["pulse_rate"][0].value == 60.0
    assert metrics["body_temperature"][0].value == 39.0
    assert metrics["spo2"][0].value == 98.0
    # 0 kg / 0 cm: not entered, never a zero weight.
    assert metrics["weight"][0].value is None
    assert metrics["weight"][0].no_value == "not_measured"
    assert metrics["height"][0].no_value == "not_measured"
    # Naive OBR-7 takes the sender's zone from MSH-7 (+0800).
    assert metrics["height"][0].time == datetime(2026, 7, 26, 15, 13, 31, tzinfo=UTC)
    assert _reasons(result)["2267^COMEN_ACVPU^99COMEN"] == "vendor_context"
    assert _reasons(result)["2275^COMEN_HANDLER^99COMEN"] == "vendor_context"


def test_comen_two_spo2_channels_told_apart_by_obx4() -> None:
    """Comen NC-series message (public PHP test sender): SpO2 on sub-IDs 1.3.1 and 1.3.2."""
    result = _decode("comen_nc_monitor_two_spo2.hl7")
    spo2 = _by_metric(result)["spo2"]
    assert [item.extra["channel"] for item in spo2] == ["1.3.1.150456", "1.3.2.150456"]
    assert _by_metric(result)["respiratory_rate"][0].value == 20.0
    assert _reasons(result)["160324^MDC_SPO2_SIGNAL_QUALITY_INDEX^MDC"] == "unmapped_code"


def test_mindray_xh80x_sentinels_are_not_measured_never_zero() -> None:
    """Mindray XH80X golden ORU^R01 from hl7_demo_data.doc: -999 and -99.9 mean no value."""
    result = _decode("mindray_xh80x_sentinels.hl7")
    assert len(result.measurements) == 4
    for item in result.measurements:
        assert item.value is None
        assert item.no_value == "not_measured"
        assert item.extra["sentinel"] in ("-999", "-99.9")
    assert result.patient == ()


def test_mindray_xh80x_naive_time_without_zone_is_kept_as_local_text() -> None:
    """XH80X sends times with no offset anywhere: no time is guessed."""
    result = _decode("mindray_xh80x_sentinels.hl7")
    item = result.measurements[0]
    assert item.time is None
    assert item.extra["local_time"] == "2021-06-11T10:20:47"
    assert "time_zone_unknown" in item.quality


def test_device_tz_applies_to_naive_times() -> None:
    """Same XH80X message with the monitor's zone configured at the gateway."""
    [result] = decode_all(
        _load("mindray_xh80x_sentinels.hl7"), default_tz=timezone(timedelta(hours=8))
    )
    assert result.measurements[0].time == datetime(2021, 6, 11, 2, 20, 47, tzinfo=UTC)
    assert result.measurements[0].extra["utc_offset"] == "+0800"


def test_mindray_vs8_demo_mode_values_are_not_patient_data() -> None:
    """Mindray VS8 capture (public gateway README): OBX-8 = DEMO means simulated values."""
    result = _decode("mindray_vs8_pcd01_demo.hl7")
    assert result.measurements == ()
    assert _reasons(result)["150456^MDC_PULS_OXIM_SAT_O2^MDC"] == "demo_mode"


def test_mindray_egateway_offsets_and_vendor_codes() -> None:
    """Mindray eGateway PCD-01 (public web app DUMMY_ORU): +0530, 99MNDRY rows, TTHOR RR."""
    result = _decode("mindray_egateway_pcd01.hl7")
    metrics = _by_metric(result)
    spo2 = metrics["spo2"][0]
    assert spo2.time == datetime(2026, 9, 12, 6, 30, tzinfo=UTC)
    assert spo2.extra["utc_offset"] == "+0530"
    assert metrics["perfusion_index"][0].value == 1.76
    assert metrics["respiratory_rate"][0].value == 17.0
    assert metrics["respiratory_rate"][0].extra["channel"] == "1.7.1.151578"
    assert _reasons(result)["108^MNDRY_ECG_PAUSE_RATE^99MNDRY"] == "unmapped_code"


def test_ge_vsp_device_containment_rows_are_ignored_as_hierarchy() -> None:
    """GE VSP / B40 PCD-01 DEC message (public Netty test server): MDS/VMD/channel rows."""
    result = _decode("ge_vsp_b40_pcd01.hl7")
    metrics = _by_metric(result)
    assert metrics["heart_rate"][0].value == 68.0
    assert metrics["pulse_rate"][0].value == 67.0
    assert metrics["spo2"][0].value == 97.0
    assert _reasons(result)["69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC"] == "device_hierarchy"


def test_philips_information_center_export() -> None:
    """Philips IntelliVue Information Center sample ("Sample from Philips Center Doc")."""
    result = _decode("philips_iic_export.hl7")
    metrics = _by_metric(result)
    assert metrics["spo2"][0].value == 95.0
    assert metrics["respiratory_rate"][0].value == 15.0
    assert metrics["heart_rate"][0].value == 60.0
    assert metrics["heart_rate"][0].extra["code"] == "0002-4182^HR^MDIL"
    # Invasive arterial pressure has no catalogue metric (catalogue bp_* are non-invasive).
    assert _reasons(result)["0002-4a15^ABPs^MDIL"] == "unmapped_code"


def test_philips_test_message_settings_and_inop_alert() -> None:
    """Philips export in an Apache Camel HL7 test: MSH-11 = T, SETTING/CONFIGURATION rows in
    OBX-13, an MDIL-ALERT INOP and reference ranges."""
    result = _decode("philips_iic_alert_setting_test.hl7")
    assert result.processing_id == "T"
    assert result.is_test
    reasons = _reasons(result)
    assert reasons["0402-f8f5^sMode^MDIL"] == "setting"
    assert reasons["0002-f887^Model^MDIL"] == "configuration"
    [alarm] = result.alarms
    assert alarm.code == "5^HardInop^MDIL-ALERT"
    assert alarm.text == "SpO2T  No Pulse"
    hr = _by_metric(result)["heart_rate"][0]
    assert hr.value == 80.0
    assert hr.extra["reference_range"] == "50-120"
    assert "heart_rate" not in {a.code for a in result.alarms}


def test_mindray_pds_legacy_codes_without_coding_system() -> None:
    """Synthetic message in the Mindray PDS shape (code table: caowm/pds-server device-item.js).

    Code and label must both match; NIBP mean has no OBX-6 and pressure units are configurable
    on the monitor, so it is not guessed; T1 = -100 is the PDS "invalid" sentinel.
    """
    result = _decode("mindray_pds_legacy.hl7")
    metrics = _by_metric(result)
    assert metrics["heart_rate"][0].value == 72.0
    assert metrics["spo2"][0].value == 97.0
    assert metrics["bp_systolic"][0].value == 118.0
    assert metrics["body_temperature"][0].no_value == "not_measured"
    assert _reasons(result)["172^Mean"] == "unit_missing"


# -- quirks (each built on a real message's rows) -----------------------------------------------

HEADER = (
    "MSH|^~\\&|NC_Monitor|KC000000000G|||20250610015127+0800||ORU^R01^ORU_R01|CTRL1|P|2.6\r"
    "OBR||||1^MON_PARAM^99COMEN|||20250610015127+0800\r"
)
SPO2 = "150456^MDC_PULS_OXIM_SAT_O2^MDC"


def _one(obx: str, header: str = HEADER) -> OruResult:
    return decode_oru(header + obx + "\r")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "not_entered"),
        ('""', "explicit_null"),
        ("9\\X37\\", "escape_in_numeric"),
        ("\\F\\97", "escape_in_numeric"),
        ("97~98", "repeated_value"),
        ("ninety", "not_a_number"),
        ("1e2", "not_a_number"),
        ("<20", "not_a_number"),
    ],
)
def test_numeric_value_quirks_go_to_ignored(value: str, reason: str) -> None:
    result = _one(f"OBX||NM|{SPO2}|1.3.1|{value}|262688^MDC_DIM_PERCENT^MDC|||||F")
    assert result.measurements == ()
    assert _reasons(result) == {SPO2: reason}


def test_structured_numeric_with_equals_is_a_value() -> None:
    result = _one(f"OBX||SN|{SPO2}|1.3.1|=^96|262688^MDC_DIM_PERCENT^MDC|||||F")
    assert result.measurements[0].value == 96.0


def test_result_status_x_is_not_measured() -> None:
    """Comen NC5: 8388607 (0x7FFFFF, 11073 NaN) with OBX-11 = X."""
    result = _one(f"OBX||NM|{SPO2}|1.6.1|8388607|262688^MDC_DIM_PERCENT^MDC|||||X")
    assert result.measurements[0].no_value == "not_measured"
    assert result.measurements[0].value is None


def test_sentinel_without_status_x() -> None:
    result = _one(f"OBX||NM|{SPO2}|1.6.1|8388607|262688^MDC_DIM_PERCENT^MDC|||||F")
    assert result.measurements[0].no_value == "not_measured"


def test_units_are_converted_once_keeping_the_original() -> None:
    """Comen NC5 listener test row: 98.6 MDC_DIM_FAHR -> 37 Cel."""
    result = _one("OBX||NM|150344^MDC_TEMP^MDC|1.4.1|98.6|268160^MDC_DIM_FAHR^MDC|||||F")
    item = result.measurements[0]
    assert item.unit == "Cel"
    assert item.value == pytest.approx(37.0)
    assert (item.original_value, item.original_unit) == (98.6, "[degF]")


def test_kpa_to_mmhg_and_glucose_mg_dl() -> None:
    result = _one(
        "OBX||NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1|16|kPa|||||F\r"
        "OBX||NM|160184^MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD^MDC|1.2|90|mg/dL|||||F"
    )
    systolic, glucose = result.measurements
    assert systolic.value == pytest.approx(120.01, abs=0.01)
    assert systolic.original_unit == "kPa"
    assert glucose.unit == "mmol/L"
    assert glucose.value == pytest.approx(4.995, abs=0.001)


def test_unit_that_cannot_be_converted_is_ignored() -> None:
    result = _one(f"OBX||NM|{SPO2}|1|97|mmHg|||||F")
    assert _reasons(result) == {SPO2: "unit_mismatch"}


def test_unknown_unit_is_ignored() -> None:
    result = _one(f"OBX||NM|{SPO2}|1|97|furlongs|||||F")
    assert _reasons(result) == {SPO2: "unknown_unit"}


def test_code_and_label_that_disagree_are_not_trusted() -> None:
    # Seen in the field: 150021 is NONINV_SYS, but the label says SpO2.
    result = _one("OBX||NM|150021^MDC_PULS_OXIM_SAT_O2^MDC|1|97|%|||||F")
    assert _reasons(result) == {"150021^MDC_PULS_OXIM_SAT_O2^MDC": "code_label_mismatch"}


def test_mdc_event_partition_rows_are_alarms() -> None:
    # Partition 3 (EVT): 196608 + term.
    result = _one("OBX||ST|196670^MDC_EVT_LO^MDC|1|SpO2 low|||||F")
    assert result.measurements == ()
    assert result.alarms[0].text == "SpO2 low"
    assert result.alarms[0].time == datetime(2025, 6, 9, 17, 51, 27, tzinfo=UTC)


def test_deleted_and_wrong_results_are_ignored() -> None:
    result = _one(
        f"OBX||NM|{SPO2}|1|97|%|||||D\rOBX||NM|147842^MDC_ECG_HEART_RATE^MDC|2|70|/min|||||W"
    )
    assert set(_reasons(result).values()) == {"result_deleted", "result_wrong"}


def test_mindray_millisecond_time_quirk() -> None:
    """Mindray eGateway waveform OBR: 20260124131540000+0800 (ms without the decimal point)."""
    result = _one(f"OBX||NM|{SPO2}|1|97|%|||||F|||20260124131540123+0800")
    assert result.measurements[0].time == datetime(2026, 1, 24, 5, 15, 40, 123000, tzinfo=UTC)


def test_impossible_time_is_ignored_not_guessed() -> None:
    result = _one(f"OBX||NM|{SPO2}|1|97|%|||||F|||20261399")
    assert _reasons(result) == {SPO2: "impossible_time"}


def test_patient_identifiers_are_masked_and_never_appear_in_output() -> None:
    national_id = "800115105533"
    message = (
        HEADER + f"PID|1|EXT778899|{national_id}^^^NRD^NI~MRN4321^^^Hospital^MR||DOE^JANE"
        f"||19800115|F|||||||||||{national_id}\r"
        f"OBX||NM|{SPO2}|1|97|%|||||F\r"
    )
    result = decode_oru(message)
    dumped = json.dumps(result.as_dict())
    assert national_id not in dumped
    assert "DOE" not in dumped
    assert "MRN4321" not in dumped
    ids = result.as_dict()["patient"]["identifiers"]
    assert {"id": "**********33", "field": "PID-3", "type": "NI", "authority": "NRD"} in ids
    assert {"id": "**********33", "field": "PID-19", "type": "SS"} in ids
    assert {"id": "*****21", "field": "PID-3", "type": "MR", "authority": "Hospital"} in ids


@pytest.mark.parametrize(
    ("identifier", "masked"),
    [("", ""), ("12345", "*****"), ("123456", "****56"), ("800115105533", "**********33")],
)
def test_mask_identifier(identifier: str, masked: str) -> None:
    assert mask_identifier(identifier) == masked


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "hello", "PID|||123\r", "MSH", "MSH|^~\\&\r", "MSHA^~\\&|x", "MSH|^^^^|a|b"],
)
def test_not_hl7_is_malformed(text: str) -> None:
    with pytest.raises(MalformedError):
        decode_all(text)


def test_missing_control_id_is_malformed() -> None:
    with pytest.raises(MalformedError, match="MSH-10"):
        decode_oru("MSH|^~\\&|A|B|||20250101||ORU^R01||P|2.6\r")


@pytest.mark.parametrize("message_type", ["ADT^A08", "ORU^W01", "QRY^R02", "ORU^R40"])
def test_other_message_types_are_unsupported(message_type: str) -> None:
    """Comen NC5 sends ADT^A08 and QRY^R02; Mindray eGateway ORU^W01 waveforms."""
    with pytest.raises(UnsupportedError) as caught:
        decode_oru(f"MSH|^~\\&|A|B|||20250101||{message_type}|1|P|2.6\r")
    assert caught.value.kind == "unsupported"


# -- splitting ----------------------------------------------------------------------------------


def test_split_accepts_cr_lf_and_crlf() -> None:
    text = _load("comen_nc5_spot_check.hl7")
    for newline in ("\r", "\n", "\r\n"):
        [message] = split_messages(text.replace("\n", newline))
        assert decode_oru(message).control_id == "20260726231332.11090007"


def test_split_several_messages_bare_and_mllp() -> None:
    names = ["comen_nc5_spot_check.hl7", "philips_iic_export.hl7", "ge_vsp_b40_pcd01.hl7"]
    texts = [_load(name) for name in names]
    assert len(split_messages("".join(texts))) == 3
    framed = b"".join(frame(text.replace("\n", "\r").encode()) for text in texts)
    results = decode_all(framed + b"\r\n")  # trailing newline between/after frames tolerated
    assert [r.control_id for r in results] == [
        "20260726231332.11090007",
        "HP104220879017992",
        "0040971443EC",
    ]


def test_split_rejects_garbage_between_mllp_frames() -> None:
    framed = frame(b"MSH|^~\\&|A|B|||x||ORU^R01|1|P|2.6\r") + b"junk"
    with pytest.raises(MalformedError) as caught:
        split_messages(framed)
    assert caught.value.offset == len(framed) - 4


def test_split_rejects_segments_before_msh() -> None:
    with pytest.raises(MalformedError):
        split_messages("PID|||1\rMSH|^~\\&|A\r")


def test_latin1_declared_in_msh18_is_accepted() -> None:
    data = _load("philips_iic_export.hl7").replace("SYNTHETIC", "SYNTH\u00c9TIC").encode("latin-1")
    [result] = decode_all(data)
    assert result.control_id == "HP104220879017992"


# -- properties ---------------------------------------------------------------------------------

_HL7ISH = st.text(alphabet=st.sampled_from(list('MSHOBXPID|^~\\&\r\n0123456789.-+ NMTF"')))


@given(st.one_of(st.text(max_size=300), _HL7ISH.map(lambda t: "MSH|^~\\&|" + t)))
@settings(max_examples=400, deadline=None)
def test_any_text_gives_a_result_or_a_decode_error(text: str) -> None:
    try:
        results = decode_all(text)
    except DecodeError:
        return
    for result in results:
        json.dumps(result.as_dict())


_OBX_FIELD = st.text(alphabet=st.sampled_from(list('0123456789.-^~\\&XFEN"% ')), max_size=12)


@given(st.lists(_OBX_FIELD, min_size=14, max_size=14), st.sampled_from(["NM", "SN", "ST", ""]))
@settings(max_examples=300, deadline=None)
def test_any_obx_row_is_a_reading_alarm_or_ignored(fields: list[str], value_type: str) -> None:
    fields[1] = value_type
    fields[2] = SPO2
    result = _one("OBX|" + "|".join(fields))
    assert len(result.measurements) + len(result.alarms) + len(result.ignored) == 1
    for item in result.measurements:
        assert (item.value is None) == (item.no_value is not None)
        assert item.unit == "%"


def test_time_is_aware_utc() -> None:
    result = _decode("comen_nc5_spot_check.hl7")
    for item in result.measurements:
        assert item.time is not None
        assert item.time.utcoffset() == timedelta(0)
