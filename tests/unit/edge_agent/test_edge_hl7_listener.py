"""HL7/MLLP listener: ACK decisions (pure) and a real TCP monitor session on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import Hl7Binding
from edge_agent.hl7_listener import Hl7Listener, PatientMap, handle_message, message_keys
from firmware_bridge.hl7 import split_messages
from firmware_bridge.mllp import MllpDeframer, frame
from vitals import Reading

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hl7"
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
MINDRAY_EUI = "00A037009B023649"  # VS8 in demo mode: values ignored by the decoder
EGATEWAY_EUI = "00A03700273EDE18"
COMEN_FACILITY = "KC000000000G"


def fixture_messages(name: str) -> list[str]:
    return split_messages((FIXTURES / name).read_bytes())


def test_message_keys_take_monitor_and_patient_ids() -> None:
    [message] = fixture_messages("mindray_vs8_pcd01_demo.hl7")
    keys = message_keys(message)
    assert keys.monitors[:2] == ("MINDRAY_VS_SERIES", MINDRAY_EUI)
    assert keys.patients == ("SYN0000000001",)


def test_bound_message_is_accepted_with_readings() -> None:
    [message] = fixture_messages("mindray_egateway_pcd01.hl7")
    patients = PatientMap([Hl7Binding(monitor=EGATEWAY_EUI, subject="s-bed-1")])
    outcome = handle_message(message, patients, now=NOW, ack_control_id="A1", incident="inc-1")
    assert outcome.code == "AA"
    assert "MSA|AA|23545" in outcome.ack
    assert len(outcome.readings) == 4
    reading = outcome.readings[0]
    assert (reading.subject, reading.device, reading.source) == (
        "s-bed-1",
        f"hl7-{EGATEWAY_EUI}",
        "hl7",
    )
    assert reading.incident == "inc-1"


def test_demo_mode_values_are_acknowledged_without_readings() -> None:
    [message] = fixture_messages("mindray_vs8_pcd01_demo.hl7")
    patients = PatientMap([Hl7Binding(monitor=MINDRAY_EUI, subject="s-bed-1")])
    outcome = handle_message(message, patients, now=NOW, ack_control_id="A1")
    assert (outcome.code, outcome.readings) == ("AA", ())


def test_pid_binding_wins_and_both_keys_must_match() -> None:
    [message] = fixture_messages("comen_nc5_spot_check.hl7")
    patients = PatientMap(
        [
            Hl7Binding(monitor=COMEN_FACILITY, subject="s-monitor"),
            Hl7Binding(
                monitor=COMEN_FACILITY, pid="SYN0000000123", subject="s-both", device="bed-1"
            ),
            Hl7Binding(monitor="OTHER", pid="SYN0000000123", subject="s-wrong"),
        ]
    )
    outcome = handle_message(message, patients, now=NOW, ack_control_id="A1")
    assert {(r.subject, r.device) for r in outcome.readings} == {("s-both", "bed-1")}


def test_unbound_message_is_not_guessed_onto_a_patient() -> None:
    [message] = fixture_messages("mindray_egateway_pcd01.hl7")
    outcome = handle_message(message, PatientMap([]), now=NOW, ack_control_id="A1")
    assert outcome.code == "AE"
    assert outcome.readings == ()
    assert "no subject bound" in outcome.ack
    fallback = handle_message(message, PatientMap([], "s-amb"), now=NOW, ack_control_id="A1")
    assert fallback.code == "AA"
    assert {r.subject for r in fallback.readings} == {"s-amb"}


def test_test_messages_are_acknowledged_but_not_charted() -> None:
    [message] = fixture_messages("philips_iic_alert_setting_test.hl7")
    outcome = handle_message(message, PatientMap([], "s-x"), now=NOW, ack_control_id="A1")
    assert outcome.code == "AA"
    assert outcome.readings == ()
    assert "not charted" in outcome.ack


def test_not_oru_is_rejected() -> None:
    message = "MSH|^~\\&|ADT|H|||20260101||ADT^A01|77|P|2.6\rPID|||X\r"
    outcome = handle_message(message, PatientMap([], "s-x"), now=NOW, ack_control_id="A1")
    assert outcome.code == "AR"
    assert "MSA|AR|77" in outcome.ack


def test_sentinels_arrive_as_no_value_never_as_numbers() -> None:
    messages = fixture_messages("mindray_xh80x_sentinels.hl7")
    outcome = handle_message(messages[0], PatientMap([], "s-x"), now=NOW, ack_control_id="A")
    assert outcome.code == "AA"
    assert all(r.value is None or r.value > -99 for r in outcome.readings)
    assert any(r.no_value is not None for r in outcome.readings)


class _AgentLoop:
    """Calls the source like EdgeAgent does (source, store, next turn) and keeps what it got."""

    def __init__(self, source: Hl7Listener) -> None:
        self.source = source
        self.stored: list[Reading] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.stored.extend(self.source())
            self._stop.wait(0.01)

    def __enter__(self) -> _AgentLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _exchange(sock: socket.socket, payload: bytes, acks_wanted: int) -> list[str]:
    sock.sendall(payload)
    deframer = MllpDeframer()
    acks: list[str] = []
    while len(acks) < acks_wanted:
        data = sock.recv(65536)
        assert data, "listener closed the connection"
        acks.extend(e.payload.decode() for e in deframer.feed(data) if hasattr(e, "payload"))
    return acks


def test_real_tcp_session_acks_every_message_after_storage() -> None:
    files = sorted(p.name for p in FIXTURES.glob("*.hl7"))
    messages = [m for name in files for m in fixture_messages(name)]
    patients = PatientMap([Hl7Binding(monitor=EGATEWAY_EUI, subject="s-bed-1")], "s-ward")
    listener = Hl7Listener(patients, host="127.0.0.1", port=0, ack_timeout_s=5)
    with (
        listener,
        _AgentLoop(listener) as agent,
        socket.create_connection(listener.address) as sock,
    ):
        sock.settimeout(10)
        acks: list[str] = []
        for message in messages:  # one at a time, like a monitor in original ACK mode
            acks.extend(_exchange(sock, frame(message.encode()), 1))
        # Noise between frames is reported, not acknowledged; a split frame still works.
        chunked = frame(messages[0].encode())
        sock.sendall(b"\r\n garbage ")
        sock.sendall(chunked[:10])
        acks.extend(_exchange(sock, chunked[10:], 1))
        # Not HL7 at all: AR.
        acks.extend(_exchange(sock, frame(b"hello monitor"), 1))
    codes = [ack.split("MSA|")[1][:2] for ack in acks]
    assert len(codes) == len(messages) + 2
    assert codes[-1] == "AR"
    assert codes.count("AA") >= len(messages) - 1
    assert listener.counters.garbage_bytes > 0
    assert len(agent.stored) == listener.counters.readings
    assert {r.subject for r in agent.stored} >= {"s-bed-1", "s-ward"}


def test_no_agent_means_no_aa() -> None:
    [message] = fixture_messages("mindray_egateway_pcd01.hl7")
    patients = PatientMap([], "s-x")
    listener = Hl7Listener(patients, host="127.0.0.1", port=0, ack_timeout_s=0.3)
    with listener, socket.create_connection(listener.address, 5) as sock:
        sock.settimeout(5)
        [ack] = _exchange(sock, frame(message.encode()), 1)
    assert "MSA|AE|" in ack
    assert listener.counters.ack_timeouts == 1


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.hl7")))
def test_every_fixture_gets_an_ack(name: str) -> None:
    for message in fixture_messages(name):
        outcome = handle_message(message, PatientMap([], "s-x"), now=NOW, ack_control_id="Z")
        assert outcome.ack.startswith("MSH")
        assert outcome.code in ("AA", "AE", "AR")


def test_two_channels_of_one_code_get_distinct_devices_so_neither_is_dropped() -> None:
    """Comen NC monitor with two SpO2 probes (OBX-4 1.3.1 / 1.3.2), fixture SOURCE.md."""
    from pathlib import Path

    from edge_agent.hl7_listener import channel_devices
    from firmware_bridge.hl7 import decode_oru, split_messages

    raw = Path(__file__).parents[2] / "fixtures" / "hl7" / "comen_nc_monitor_two_spo2.hl7"
    message = split_messages(raw.read_bytes())[0]
    result = decode_oru(message)
    devices = channel_devices(result.measurements, "monitor-7")
    keys = {(d, m.metric, m.time) for d, m in zip(devices, result.measurements, strict=True)}
    assert len(keys) == len(result.measurements)
    spo2 = [d for d, m in zip(devices, result.measurements, strict=True) if m.metric == "spo2"]
    assert len(spo2) == 2 and len(set(spo2)) == 2
    others = [d for d, m in zip(devices, result.measurements, strict=True) if m.metric != "spo2"]
    assert set(others) <= {"monitor-7"}
