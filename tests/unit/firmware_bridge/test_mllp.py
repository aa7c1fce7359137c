"""MLLP framing (HL7 v2.6 Appendix C.4): <VT> payload <FS><CR>, incremental, nothing dropped."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.mllp import Event, Frame, Garbage, MllpDeframer, deframe_all, frame

# First segments of the Comen NC-series message in tests/fixtures/hl7 (see SOURCE.md).
ORU = (
    b"MSH|^~\\&|NC_Monitor|KC000000000G|||20250610015127+0800||ORU^R01^ORU_R01|"
    b"202506100151270003|P|2.6||||||UNICODE UTF-8\r"
    b"OBX||NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC\r"
)


def _bytes_of(event: Event) -> bytes:
    if isinstance(event, Frame):
        return b"\x0b" + event.payload + b"\x1c\r"
    return event.data


def test_frame_wraps_payload() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"


@pytest.mark.parametrize("forbidden", [b"\x0b", b"\x1c"])
def test_frame_rejects_block_characters_in_payload(forbidden: bytes) -> None:
    with pytest.raises(MalformedError) as caught:
        frame(b"MSH|" + forbidden)
    assert caught.value.offset == 4


def test_one_frame_in_one_chunk() -> None:
    assert deframe_all(frame(ORU)) == [Frame(ORU, 0)]


def test_frame_split_byte_by_byte() -> None:
    deframer = MllpDeframer()
    events: list[Event] = []
    for byte in frame(ORU) + frame(ORU):
        events.extend(deframer.feed(bytes([byte])))
    assert events == [Frame(ORU, 0), Frame(ORU, len(ORU) + 3)]
    assert deframer.close() == []


def test_garbage_between_frames_is_reported_with_offset() -> None:
    stream = frame(b"A") + b"\r\nnoise" + frame(b"B")
    events = deframe_all(stream)
    assert events == [
        Frame(b"A", 0),
        Garbage(b"\r\nnoise", 4, "bytes outside an MLLP frame"),
        Frame(b"B", 11),
    ]


def test_restarted_frame_is_reported_not_dropped() -> None:
    # A monitor reconnects mid-message and starts again with VT.
    events = deframe_all(b"\x0bMSH|half" + frame(b"MSH|whole"))
    assert events[0] == Garbage(
        b"\x0bMSH|half", 0, "frame restarted (VT) before its FS CR end block"
    )
    assert events[1] == Frame(b"MSH|whole", 9)


def test_end_block_without_carriage_return() -> None:
    events = deframe_all(b"\x0bMSH|a\x1cX")
    assert events == [
        Garbage(b"\x0bMSH|a\x1c", 0, "FS end block not followed by CR"),
        Garbage(b"X", 7, "bytes outside an MLLP frame"),
    ]


def test_close_reports_unfinished_frame() -> None:
    deframer = MllpDeframer()
    assert deframer.feed(b"\x0bMSH|partial") == []
    assert deframer.pending == 12
    assert deframer.close() == [
        Garbage(b"\x0bMSH|partial", 0, "stream ended inside an MLLP frame (no FS CR end block)")
    ]


def test_runaway_frame_is_cut_at_max_size() -> None:
    deframer = MllpDeframer(max_frame=8)
    events = deframer.feed(b"\x0b" + b"x" * 20)
    assert isinstance(events[0], Garbage)
    assert events[0].reason == "frame exceeds 8 bytes"


payloads = st.binary(max_size=200).filter(lambda data: b"\x0b" not in data and b"\x1c" not in data)


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(st.lists(payloads, max_size=5), st.data())
@settings(max_examples=200, deadline=None)
def test_round_trip_for_any_payloads_and_chunking(
    messages: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(message) for message in messages)
    deframer = MllpDeframer()
    events: list[Event] = []
    for chunk in data.draw(chunkings(stream)):
        events.extend(deframer.feed(chunk))
    events.extend(deframer.close())
    assert [event.payload for event in events if isinstance(event, Frame)] == messages
    assert not [event for event in events if isinstance(event, Garbage)]


@given(st.binary(max_size=300), st.data())
@settings(max_examples=300, deadline=None)
def test_any_stream_every_byte_is_accounted_for_whatever_the_chunking(
    stream: bytes, data: st.DataObject
) -> None:
    one_shot = deframe_all(stream)
    deframer = MllpDeframer(max_frame=1 << 20)
    chunked: list[Event] = []
    for chunk in data.draw(chunkings(stream)):
        chunked.extend(deframer.feed(chunk))
    chunked.extend(deframer.close())
    assert chunked == one_shot
    # Never silently dropped: frames and garbage together are exactly the input.
    assert b"".join(_bytes_of(event) for event in chunked) == stream
