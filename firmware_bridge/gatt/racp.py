"""Record Access Control Point 0x2A52 (GSS "Record Access Control Point"; used by the Glucose,
CGM, PLX and other services to fetch stored records).

A request is op code (uint8) · operator (uint8) · operand (per op code/operator). The server
answers with op code 5 "Number of Stored Records Response" (operator 0, count uint16; uint32
is accepted too, as newer services define it) or op code 6 "Response Code" (operator 0, request
op code, response code value). This module builds the requests the edge agent sends and decodes
the responses.
"""

from __future__ import annotations

from typing import Final

from firmware_bridge.gatt._core import Cursor, DecodeContext, GattResult

UUID: Final = 0x2A52

OP_REPORT_RECORDS: Final = 0x01
OP_DELETE_RECORDS: Final = 0x02
OP_ABORT: Final = 0x03
OP_REPORT_NUMBER: Final = 0x04
OP_NUMBER_RESPONSE: Final = 0x05
OP_RESPONSE_CODE: Final = 0x06

OPERATOR_NULL: Final = 0x00
OPERATOR_ALL: Final = 0x01
OPERATOR_LESS_OR_EQUAL: Final = 0x02
OPERATOR_GREATER_OR_EQUAL: Final = 0x03
OPERATOR_WITHIN_RANGE: Final = 0x04
OPERATOR_FIRST: Final = 0x05
OPERATOR_LAST: Final = 0x06

#: Filter type of the operand: 0x01 = sequence number (GLS) / time offset (CGMS).
FILTER_SEQUENCE_NUMBER: Final = 0x01

OP_CODES: Final[dict[int, str]] = {
    1: "report_stored_records",
    2: "delete_stored_records",
    3: "abort_operation",
    4: "report_number_of_stored_records",
    5: "number_of_stored_records_response",
    6: "response_code",
}
RESPONSE_CODES: Final[dict[int, str]] = {
    1: "success",
    2: "op_code_not_supported",
    3: "invalid_operator",
    4: "operator_not_supported",
    5: "invalid_operand",
    6: "no_records_found",
    7: "abort_unsuccessful",
    8: "procedure_not_completed",
    9: "operand_not_supported",
}


def report_all() -> bytes:
    """Request: report all stored records."""
    return bytes((OP_REPORT_RECORDS, OPERATOR_ALL))


def report_from_sequence(sequence_number: int) -> bytes:
    """Request: report records with sequence number >= ``sequence_number`` (backfill)."""
    return bytes((OP_REPORT_RECORDS, OPERATOR_GREATER_OR_EQUAL, FILTER_SEQUENCE_NUMBER)) + (
        sequence_number.to_bytes(2, "little")
    )


def report_number_all() -> bytes:
    """Request: report the number of all stored records."""
    return bytes((OP_REPORT_NUMBER, OPERATOR_ALL))


def report_number_from_sequence(sequence_number: int) -> bytes:
    """Request: number of records with sequence number >= ``sequence_number``."""
    return bytes((OP_REPORT_NUMBER, OPERATOR_GREATER_OR_EQUAL, FILTER_SEQUENCE_NUMBER)) + (
        sequence_number.to_bytes(2, "little")
    )


def abort() -> bytes:
    """Request: abort the operation in progress."""
    return bytes((OP_ABORT, OPERATOR_NULL))


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """Decode a RACP response (op code 5 or 6); requests and unknown op codes are malformed
    here because a collector only ever receives responses."""
    cur = Cursor(data, "0x2A52")
    op_code = cur.u8("op code")
    operator = cur.u8("operator")
    if operator != OPERATOR_NULL:
        cur.fail(f"responses use operator 0 (null), got {operator}", offset=1)
    fields: dict[str, object] = {"op_code": op_code, "op": OP_CODES.get(op_code, "reserved")}
    if op_code == OP_NUMBER_RESPONSE:
        if cur.remaining == 4:
            count = cur.u32("number of records (uint32)")
        else:
            count = cur.u16("number of records (uint16)")
        fields["number_of_records"] = count
    elif op_code == OP_RESPONSE_CODE:
        request = cur.u8("request op code")
        code = cur.u8("response code value")
        fields["request_op_code"] = request
        fields["request_op"] = OP_CODES.get(request, "reserved")
        fields["response_code"] = code
        fields["response"] = RESPONSE_CODES.get(code, "reserved")
        fields["success"] = code == 1
    else:
        cur.fail(f"op code {op_code} is not a response (expected 5 or 6)", offset=0)
    cur.finish()
    return GattResult("0x2A52", (), fields)


def encode_number_response(count: int) -> bytes:
    """Server side (simulator): Number of Stored Records Response."""
    return bytes((OP_NUMBER_RESPONSE, OPERATOR_NULL)) + count.to_bytes(2, "little")


def encode_response_code(request_op_code: int, response_code: int) -> bytes:
    """Server side (simulator): Response Code."""
    return bytes((OP_RESPONSE_CODE, OPERATOR_NULL, request_op_code, response_code))
