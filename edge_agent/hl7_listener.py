"""An MLLP/HL7 v2 listener: bedside and ambulance monitors push ORU^R01 to the gateway.

Monitors (Mindray, Philips, GE, Comen...) act as TCP clients that open a connection to a
configured host:port (IANA port 2575) and send ORU^R01 messages in MLLP blocks
``<VT> message <FS><CR>`` (HL7 v2.5.1 Appendix C "Lower Layer Protocols" / IHE ITI TF-2x
Appendix C; the deframer is :mod:`firmware_bridge.mllp`). In original acknowledgement mode
(HL7 v2.5.1 2.9.2; IHE PCD-01) the monitor waits for an ACK of each message before sending the
next one, so the listener answers EVERY frame: ``AA`` when the readings are safely in the
outbox, ``AE``/``AR`` with the reason otherwise (:mod:`firmware_bridge.hl7_ack`).

Durability: ``AA`` means "the gateway has taken responsibility", so it is sent only once the
readings are on disk. The listener cannot see the outbox (the agent's thread owns it), so it
uses the agent's loop contract: the agent calls each source, then puts what it returned into
the outbox, then calls the sources again on its next turn. The listener's source callable
therefore releases the ACKs of readings it handed over on the *previous* call (by then they
have been committed). If the agent does not come back within ``ack_timeout_s`` the monitor gets
``AE`` and will resend; the (device, metric, time) key makes the resend harmless downstream.

Binding: a monitor's message names the monitor (MSH-3 namespace / universal id such as the
EUI-64, MSH-4 facility) and the patient (PID-3). The patient map in the configuration binds
either or both to a pseudonymous subject. The clear PID-3 identifier is used for that lookup
only and never logged (firmware_bridge masks it everywhere else). A message that binds to no
subject is answered ``AE`` (never guessed onto a patient) unless a ``default_subject`` is set
(an ambulance with one patient).

Pure core: :func:`message_keys`, :class:`PatientMap` and :func:`handle_message` (message text ->
ACK + readings). Shell: :class:`Hl7Listener` (a threaded TCP server and the source callable).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import socket
import socketserver
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Final

from edge_agent.config import Hl7Binding
from firmware_bridge.errors import DecodeError, MalformedError
from firmware_bridge.hl7 import decode_oru, split_messages
from firmware_bridge.hl7_ack import AckCode, ack_code_for, build_ack
from firmware_bridge.measurement import Measurement, to_reading
from firmware_bridge.mllp import Frame, MllpDeframer, frame
from vitals import Reading, is_identifier

log = logging.getLogger("vitalstream.edge.hl7")

#: Receive buffer per recv(); ORU messages are a few kB.
_RECV_BYTES: Final = 65536


# -- pure core -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """What identifies the sender and the patient of one message (clear text, lookup only)."""

    monitors: tuple[str, ...]
    """MSH-3.1 namespace, MSH-3.2 universal id (e.g. EUI-64), MSH-4.1 facility; non-empty."""
    patients: tuple[str, ...]
    """PID-3 identifier values (CX.1 of each repetition)."""


def message_keys(message: str) -> MessageKeys:
    """Extract monitor and patient keys with the message's own delimiters (HL7 v2.5.1 2.5.4)."""
    segments = message.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    msh = segments[0]
    if not msh.startswith("MSH") or len(msh) < 8:
        return MessageKeys((), ())
    field_sep = msh[3]
    encoding = msh[4:].split(field_sep, 1)[0]
    component = encoding[0] if encoding else "^"
    repetition = encoding[1] if len(encoding) > 1 else "~"
    fields = ["MSH", field_sep, *msh[4:].split(field_sep)]  # fields[n] = MSH-n

    def comp(value: str, index: int) -> str:
        parts = value.split(component)
        return parts[index].strip() if index < len(parts) else ""

    monitors: list[str] = []
    for number, indexes in ((3, (0, 1)), (4, (0,))):
        if number < len(fields):
            for index in indexes:
                value = comp(fields[number], index)
                if value and value not in monitors:
                    monitors.append(value)
    patients: list[str] = []
    for segment in segments[1:]:
        if segment.startswith("PID" + field_sep):
            pid_fields = segment.split(field_sep)
            if len(pid_fields) > 3:
                for rep in pid_fields[3].split(repetition):
                    value = comp(rep, 0)
                    if value and value != '""' and value not in patients:
                        patients.append(value)
    return MessageKeys(tuple(monitors), tuple(patients))


def _device_from_monitor(monitor: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "_.:-" else "-" for ch in monitor).strip("-")
    candidate = f"hl7-{cleaned}"[:128]
    return candidate if is_identifier(candidate) else "hl7-monitor"


@dataclass(frozen=True, slots=True)
class Binding:
    """The subject and device a message is bound to."""

    subject: str
    device: str


@dataclass(frozen=True)
class PatientMap:
    """Monitor / PID -> subject. A binding with both keys is the most specific and wins."""

    bindings: Sequence[Hl7Binding] = ()
    default_subject: str | None = None

    def bind(self, keys: MessageKeys) -> Binding | None:
        """The binding of a message, or None when it must not be accepted."""
        monitor = keys.monitors[1] if len(keys.monitors) > 1 else next(iter(keys.monitors), "")
        ranked = sorted(
            self.bindings, key=lambda b: (b.monitor is None) + (b.pid is None)
        )  # both keys first
        for binding in ranked:
            if binding.monitor is not None and binding.monitor not in keys.monitors:
                continue
            if binding.pid is not None and binding.pid not in keys.patients:
                continue
            device = binding.device or _device_from_monitor(binding.monitor or monitor or "hl7")
            return Binding(binding.subject, device)
        if self.default_subject is not None:
            return Binding(self.default_subject, _device_from_monitor(monitor or "monitor"))
        return None


@dataclass(frozen=True, slots=True)
class Hl7Outcome:
    """What the listener does with one message: the ACK to send and the readings to keep."""

    code: AckCode
    ack: str
    readings: tuple[Reading, ...] = ()
    alarms: int = 0
    reason: str = ""
    control_id: str = ""


def handle_message(
    message: str,
    patients: PatientMap,
    *,
    now: datetime,
    ack_control_id: str,
    default_tz: tzinfo | None = None,
    incident: str | None = None,
) -> Hl7Outcome:
    """Decode one HL7 message and decide its ACK (pure: ``now`` and the ACK id are inputs).

    AR: not HL7 / not ORU^R01 (the monitor must not resend it unchanged). AE: decodable but
    unusable here (no binding, readings the contract rejects). AA: readings ready for the
    outbox; a test message (MSH-11 = T) is acknowledged but never charted.
    """

    def reply(
        code: AckCode,
        text: str = "",
        *,
        readings: tuple[Reading, ...] = (),
        alarms: int = 0,
        control_id: str = "",
    ) -> Hl7Outcome:
        ack = build_ack(message, code, control_id=ack_control_id, now=now, text=text)
        return Hl7Outcome(code, ack, readings, alarms, text, control_id)

    try:
        result = decode_oru(message, default_tz=default_tz)
    except DecodeError as error:
        return reply(ack_code_for(error), error.detail)
    if result.is_test:
        return reply(
            "AA", "test message (MSH-11=T): acknowledged, not charted", control_id=result.control_id
        )
    binding = patients.bind(message_keys(message))
    if binding is None:
        return reply(
            "AE",
            "no subject bound to this monitor/patient at the gateway",
            control_id=result.control_id,
        )
    readings: list[Reading] = []
    devices = channel_devices(result.measurements, binding.device)
    try:
        for measurement, device in zip(result.measurements, devices, strict=True):
            reading = to_reading(
                measurement,
                subject=binding.subject,
                device=device,
                received_at=now,
                source="hl7",
            )
            if incident is not None:
                reading = reading.model_copy(update={"incident": incident})
            readings.append(reading)
    except ValueError as exc:  # pydantic ValidationError: the contract refuses a value
        first = str(exc).splitlines()[0]
        return reply("AE", f"reading rejected: {first}", control_id=result.control_id)
    return reply(
        "AA",
        readings=tuple(readings),
        alarms=len(result.alarms),
        control_id=result.control_id,
    )


def channel_devices(measurements: Sequence[Measurement], device: str) -> list[str]:
    """The device id of each measurement: the monitor's, or monitor + channel on a clash.

    A monitor may send one code on two channels at once (e.g. two SpO2 probes, OBX-4
    1.3.1 and 1.3.2). Under one device id both would share the (device, metric, time) key and
    one would be dropped as a duplicate, so clashing measurements get ``<device>.<channel>``.
    Measurements without a clash keep the plain device id (OBX-4 is present on nearly every
    IHE PCD-01 row; appending it always would split one monitor into dozens of devices).
    """
    seen: dict[tuple[str, object], int] = {}
    for m in measurements:
        seen[(m.metric, m.time)] = seen.get((m.metric, m.time), 0) + 1
    out: list[str] = []
    for m in measurements:
        channel = m.extra.get("channel")
        if seen[(m.metric, m.time)] > 1 and isinstance(channel, str) and channel:
            safe = re.sub(r"[^A-Za-z0-9_.:-]", "_", channel)
            out.append(f"{device}.{safe}"[:128])
        else:
            out.append(device)
    return out


# -- shell ---------------------------------------------------------------------------------------


@dataclass
class Hl7Counters:
    """What the listener did (for logs, status and tests)."""

    connections: int = 0
    messages: int = 0
    accepted: int = 0
    errors: int = 0
    rejected: int = 0
    readings: int = 0
    alarms: int = 0
    garbage_bytes: int = 0
    ack_timeouts: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


@dataclass
class _Handover:
    readings: tuple[Reading, ...]
    stored: threading.Event = field(default_factory=threading.Event)


class Hl7Listener:
    """A threaded MLLP server and an EdgeAgent source (call it to take received readings).

    ``start``/``stop`` (or ``with``) run the server; ``port=0`` picks a free port (tests), see
    :attr:`address`.
    """

    def __init__(
        self,
        patients: PatientMap,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        default_tz: tzinfo | None = None,
        incident: str | None = None,
        ack_timeout_s: float = 10.0,
    ) -> None:
        self.patients = patients
        self.default_tz = default_tz
        self.incident = incident
        self.ack_timeout_s = ack_timeout_s
        self.counters = Hl7Counters()
        self._lock = threading.Lock()
        self._incoming: queue.SimpleQueue[_Handover] = queue.SimpleQueue()
        self._handed: list[_Handover] = []
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Accept connections in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hl7-listener", daemon=True
        )
        self._thread.start()
        log.info("HL7/MLLP listener on %s:%d", *self.address)

    def stop(self) -> None:
        """Stop accepting, close connections; un-ACKed messages get no AA (monitors resend)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread is not None:
            self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def close(self) -> None:
        """The source protocol's name for :meth:`stop`."""
        self.stop()

    def __enter__(self) -> Hl7Listener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the source side (agent thread) ----------------------------------------------------
    def __call__(self) -> list[Reading]:
        """Readings received since the last call; confirms the previous call's as stored."""
        for handover in self._handed:
            handover.stored.set()  # the agent put them in its outbox after the last call
        self._handed = []
        out: list[Reading] = []
        while True:
            try:
                handover = self._incoming.get_nowait()
            except queue.Empty:
                break
            self._handed.append(handover)
            out.extend(handover.readings)
        return out

    # -- the connection side (server threads) ----------------------------------------------
    def _count(self, outcome: Hl7Outcome) -> None:
        with self._lock:
            counters = self.counters
            counters.messages += 1
            counters.by_code[outcome.code] = counters.by_code.get(outcome.code, 0) + 1
            if outcome.code == "AA":
                counters.accepted += 1
                counters.readings += len(outcome.readings)
                counters.alarms += outcome.alarms
            elif outcome.code == "AE":
                counters.errors += 1
            else:
                counters.rejected += 1

    def process(self, payload: bytes, peer: str) -> list[bytes]:
        """One MLLP frame -> the framed ACK(s) to send back (one per message in the frame)."""
        try:
            messages = split_messages(payload)
        except MalformedError as error:
            text = payload.decode("latin-1")
            ack = build_ack(text, "AR", control_id=_ack_id(), now=_now(), text=error.detail)
            self._count(Hl7Outcome("AR", ack, reason=error.detail))
            log.warning("HL7 from %s rejected: %s", peer, error.detail)
            return [frame(ack.encode("utf-8"))]
        acks: list[bytes] = []
        for message in messages:
            outcome = handle_message(
                message,
                self.patients,
                now=_now(),
                ack_control_id=_ack_id(),
                default_tz=self.default_tz,
                incident=self.incident,
            )
            if outcome.code == "AA" and outcome.readings:
                outcome = self._hand_over(message, outcome)
            self._count(outcome)
            if outcome.code != "AA":
                log.warning(
                    "HL7 message %s from %s: %s %s",
                    outcome.control_id or "?",
                    peer,
                    outcome.code,
                    outcome.reason,
                )
            if outcome.alarms:
                # Alarms are not Readings; the alarm lane needs an agent hook (docs/edge.md).
                log.warning(
                    "HL7 message %s carried %d alarm row(s)", outcome.control_id, outcome.alarms
                )
            acks.append(frame(outcome.ack.encode("utf-8")))
        return acks

    def _hand_over(self, message: str, outcome: Hl7Outcome) -> Hl7Outcome:
        handover = _Handover(outcome.readings)
        self._incoming.put(handover)
        if handover.stored.wait(self.ack_timeout_s) and not self._closed.is_set():
            return outcome
        with self._lock:
            self.counters.ack_timeouts += 1
        text = "gateway did not store the readings in time; resend"
        ack = build_ack(message, "AE", control_id=_ack_id(), now=_now(), text=text)
        return Hl7Outcome("AE", ack, reason=text, control_id=outcome.control_id)

    def add_garbage(self, size: int) -> None:
        """Count bytes outside MLLP frames (line noise, keep-alives)."""
        with self._lock:
            self.counters.garbage_bytes += size

    def add_connection(self) -> None:
        """Count a monitor connection."""
        with self._lock:
            self.counters.connections += 1


def _now() -> datetime:
    return datetime.now(UTC)


def _ack_id() -> str:
    return uuid.uuid4().hex[:20]


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        listener = self.server.listener
        sock: socket.socket = self.request
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        listener.add_connection()
        self.server.track(sock, add=True)
        deframer = MllpDeframer()
        try:
            while True:
                try:
                    data = sock.recv(_RECV_BYTES)
                except OSError:
                    break
                if not data:
                    break
                for event in deframer.feed(data):
                    if isinstance(event, Frame):
                        for ack in listener.process(event.payload, peer):
                            sock.sendall(ack)
                    elif event.data.strip(b" \t\r\n"):
                        listener.add_garbage(len(event.data))
                        log.warning("MLLP from %s at %d: %s", peer, event.offset, event.reason)
            for event in deframer.close():
                if not isinstance(event, Frame) and event.data.strip(b" \t\r\n"):
                    listener.add_garbage(len(event.data))
                    log.warning("MLLP from %s: %s", peer, event.reason)
        except OSError as exc:
            log.info("HL7 connection from %s ended: %s", peer, exc)
        finally:
            self.server.track(sock, add=False)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], listener: Hl7Listener) -> None:
        self.listener = listener
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, sock: socket.socket, *, add: bool) -> None:
        with self._open_lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def close_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()
