"""ACK/NAK builder for the edge's MLLP listener (HL7 v2.6 2.9.2 original acknowledgment)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import hl7  # type: ignore[import-untyped]

from firmware_bridge.errors import MalformedError, UnsupportedError
from firmware_bridge.hl7_ack import ack_code_for, build_ack

NOW = datetime(2026, 7, 26, 15, 13, 32, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"


def test_ack_echoes_control_id_and_swaps_sender() -> None:
    """ACK for the real Mindray eGateway message (fixtures/hl7/mindray_egateway_pcd01.hl7)."""
    original = (FIXTURES / "mindray_egateway_pcd01.hl7").read_text().replace("\n", "\r")
    ack = build_ack(original, "AA", control_id="EDGE-1", now=NOW)
    parsed = hl7.parse(ack)
    msh, msa = parsed[0], parsed[1]
    assert str(msh[5]) == "MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64"  # receiver = old sender
    assert str(msh[6]) == "MINDRAY"
    assert str(msh[7]) == "20260726151332+0000"
    assert str(msh[9]) == "ACK^R01^ACK"
    assert str(msh[10]) == "EDGE-1"
    assert str(msh[11]) == "P"
    assert str(msh[12]) == "2.6"
    assert str(msa[1]) == "AA"
    assert str(msa[2]) == "23545"
    assert ack.endswith("\r")


def test_nak_text_is_escaped_and_truncated() -> None:
    original = "MSH|^~\\&|MON|ICU|||20250101||ORU^R01|77|T|2.5\r"
    ack = build_ack(original, "AE", control_id="E2", now=NOW, text="bad|value^" + "x" * 100)
    msa = ack.split("\r")[1]
    assert msa.startswith("MSA|AE|77|bad\\F\\value\\S\\x")
    assert "|T|2.5" in ack.split("\r")[0]


def test_garbage_gets_a_reject_with_empty_control_id() -> None:
    ack = build_ack("not hl7 at all", "AR", control_id="E3", now=NOW)
    assert ack.split("\r")[1] == "MSA|AR|"
    assert ack.startswith("MSH|^~\\&|")


def test_ack_code_for_outcomes() -> None:
    assert ack_code_for(None) == "AA"
    assert ack_code_for(MalformedError("x")) == "AR"
    assert ack_code_for(UnsupportedError("x")) == "AR"
