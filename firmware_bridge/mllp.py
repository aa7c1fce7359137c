"""MLLP framing for HL7 v2 over TCP: a pure, incremental deframer and a framer.

HL7 v2 messages travel over TCP inside the Minimal Lower Layer Protocol (HL7 v2.6 Implementation
Guide, Appendix C "Lower Layer Protocols", C.4 MLLP release 2; IHE PCD TF-2 Appendix "Lower Layer
Protocol"): each message is one block ``<VT> payload <FS><CR>`` with VT = 0x0B, FS = 0x1C and
CR = 0x0D. TCP delivers bytes in arbitrary chunks, so the edge's listener feeds whatever it
received into :class:`MllpDeframer` and gets back the complete frames.

Nothing is silently dropped: bytes outside a frame (line noise, a monitor that sends a bare
CR/LF keep-alive, a frame cut short by a reconnect) come back as :class:`Garbage` events with
their stream offset and a reason, so the shell can log and count them. The deframer does no I/O
and reads no clock; its events depend only on the bytes fed, never on how they were chunked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from firmware_bridge.errors import MalformedError

#: HL7 v2.6 Appendix C.4.1: start block character (vertical tab).
START_BLOCK = 0x0B
#: End block character (file separator), followed by a carriage return.
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D

#: A message larger than this is treated as a runaway frame (missing end block). Bedside
#: monitors send a few kB per ORU; 1 MiB leaves room for waveform (ORU^W01) batches.
DEFAULT_MAX_FRAME = 1 << 20


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete MLLP block: the HL7 payload between VT and FS CR (both excluded)."""

    payload: bytes
    offset: int
    """Stream offset of the start block (VT) of this frame."""


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that are not part of a complete frame, reported instead of being dropped."""

    data: bytes
    offset: int
    """Stream offset of the first garbage byte."""
    reason: str


Event = Frame | Garbage


class _State(Enum):
    OUTSIDE = "outside"  # between frames: everything up to the next VT is garbage
    INSIDE = "inside"  # after VT: collecting the payload
    END_SEEN = "end_seen"  # inside, saw FS: the next byte must be CR


class MllpDeframer:
    """Turn a TCP byte stream into MLLP frames and garbage reports, incrementally.

    Call :meth:`feed` with each chunk received and :meth:`close` at end of stream (it reports a
    frame left unfinished). The object holds only the bytes of the frame in progress.
    """

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self._max_frame = max_frame
        self._state = _State.OUTSIDE
        self._buffer = bytearray()
        self._buffer_offset = 0  # stream offset of _buffer[0]
        self._position = 0  # stream offset of the next byte fed

    @property
    def pending(self) -> int:
        """Bytes held for a frame (or garbage run) not yet reported."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the frames completed and the garbage found, in stream order.

        Garbage between frames is reported when the next frame starts (or at :meth:`close`), so
        that a run of garbage is one event whatever the chunking.
        """
        events: list[Event] = []
        view = memoryview(data)
        index = 0
        while index < len(view):
            if self._state is _State.OUTSIDE:
                index = self._scan_outside(view, index, events)
            elif self._state is _State.INSIDE:
                index = self._scan_inside(view, index, events)
            else:
                index = self._after_end_block(view, index, events)
        self._position += len(data)
        return events

    def close(self) -> list[Event]:
        """End of stream: report whatever is held (an unfinished frame or trailing garbage)."""
        events: list[Event] = []
        if self._buffer:
            reason = (
                "bytes outside an MLLP frame"
                if self._state is _State.OUTSIDE
                else "stream ended inside an MLLP frame (no FS CR end block)"
            )
            events.append(Garbage(bytes(self._buffer), self._buffer_offset, reason))
        self._buffer.clear()
        self._state = _State.OUTSIDE
        return events

    # -- states -------------------------------------------------------------------------------

    def _scan_outside(self, view: memoryview, index: int, events: list[Event]) -> int:
        start = bytes(view[index:]).find(bytes([START_BLOCK]))
        if start < 0:
            self._hold(view[index:], self._position + index)
            if len(self._buffer) > self._max_frame:
                self._flush_garbage(events, "bytes outside an MLLP frame")
            return len(view)
        self._hold(view[index : index + start], self._position + index)
        self._flush_garbage(events, "bytes outside an MLLP frame")
        self._state = _State.INSIDE
        self._buffer_offset = self._position + index + start
        self._buffer.append(START_BLOCK)
        return index + start + 1

    def _scan_inside(self, view: memoryview, index: int, events: list[Event]) -> int:
        rest = bytes(view[index:])
        end = rest.find(bytes([END_BLOCK]))
        restart = rest.find(bytes([START_BLOCK]))
        if restart >= 0 and (end < 0 or restart < end):
            # A new VT before this frame's end block: the sender gave up on the frame (HL7 v2.6
            # C.4.2: the receiver discards an incomplete block). Report it and start afresh.
            self._buffer.extend(rest[:restart])
            self._flush_garbage(events, "frame restarted (VT) before its FS CR end block")
            self._state = _State.OUTSIDE
            return index + restart
        if end < 0:
            self._buffer.extend(rest)
            if len(self._buffer) > self._max_frame:
                self._flush_garbage(events, f"frame exceeds {self._max_frame} bytes")
                self._state = _State.OUTSIDE
            return len(view)
        self._buffer.extend(rest[:end])
        self._buffer.append(END_BLOCK)
        self._state = _State.END_SEEN
        return index + end + 1

    def _after_end_block(self, view: memoryview, index: int, events: list[Event]) -> int:
        if view[index] == CARRIAGE_RETURN:
            # buffer = VT payload FS
            events.append(Frame(bytes(self._buffer[1:-1]), self._buffer_offset))
            self._buffer.clear()
            self._state = _State.OUTSIDE
            self._buffer_offset = self._position + index + 1
            return index + 1
        # HL7 v2.6 C.4.1: FS must be followed by CR; anything else means the block is corrupt.
        self._flush_garbage(events, "FS end block not followed by CR")
        self._state = _State.OUTSIDE
        return index

    # -- helpers ------------------------------------------------------------------------------

    def _hold(self, chunk: memoryview, offset: int) -> None:
        if not chunk:
            return
        if not self._buffer:
            self._buffer_offset = offset
        self._buffer.extend(chunk)

    def _flush_garbage(self, events: list[Event], reason: str) -> None:
        if self._buffer:
            events.append(Garbage(bytes(self._buffer), self._buffer_offset, reason))
        self._buffer.clear()


def frame(payload: bytes) -> bytes:
    """Wrap one HL7 message in an MLLP block.

    Raises :class:`MalformedError` when the payload contains VT or FS: HL7 v2.6 C.4.1 forbids
    them inside a block, and sending them would desynchronise the receiver.
    """
    for forbidden, name in ((START_BLOCK, "VT (0x0B)"), (END_BLOCK, "FS (0x1C)")):
        position = payload.find(bytes([forbidden]))
        if position >= 0:
            raise MalformedError(f"HL7 payload contains {name}", offset=position)
    return bytes([START_BLOCK]) + payload + bytes([END_BLOCK, CARRIAGE_RETURN])


def deframe_all(data: bytes) -> list[Event]:
    """Deframe a complete capture in one call (a file, a test vector)."""
    deframer = MllpDeframer(max_frame=max(len(data), 1))
    return [*deframer.feed(data), *deframer.close()]
