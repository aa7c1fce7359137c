"""Record Access Control Point 0x2A52.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../RecordAccessControlPointDataCallbackTest.java (responses {6,0,1,1}
success; {6,0,12,2} op code not supported; {6,0,1,6} no records; {5,0,2,1} = 258 records;
{5,0,4,3,2,1} = 16909060 (uint32); invalid {5,0,3,2,1}, {1,1}, {6,1,1}). Nordic also accepts a
1-byte count {5,0,1}; the GSS defines uint16, so this decoder rejects it (documented).
"""

from __future__ import annotations

import pytest
from gatt_helpers import decode_hex

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import racp


def test_requests() -> None:
    assert racp.report_all() == bytes((1, 1))
    assert racp.report_from_sequence(0x0102) == bytes((1, 3, 1, 2, 1))
    assert racp.report_number_all() == bytes((4, 1))
    assert racp.abort() == bytes((3, 0))


@pytest.mark.parametrize(
    ("hex_value", "expected"),
    [
        ("06000101", {"response": "success", "request_op": "report_stored_records"}),
        ("06000c02", {"response": "op_code_not_supported", "request_op_code": 12}),
        ("06000106", {"response": "no_records_found", "success": False}),
        ("05000201", {"number_of_records": 258}),
        ("050004030201", {"number_of_records": 16909060}),
    ],
)
def test_nordic_responses(hex_value: str, expected: dict[str, object]) -> None:
    fields = decode_hex(0x2A52, hex_value).fields
    for key, value in expected.items():
        assert fields[key] == value


@pytest.mark.parametrize("hex_value", ["0500030201", "0101", "060101", "050001", "0600010100"])
def test_malformed(hex_value: str) -> None:
    with pytest.raises(MalformedError):
        decode_hex(0x2A52, hex_value)


def test_simulator_responses_round_trip() -> None:
    assert decode_hex(0x2A52, racp.encode_number_response(7).hex()).fields["number_of_records"] == 7
    assert decode_hex(0x2A52, racp.encode_response_code(1, 1).hex()).fields["success"] is True
