"""ECG snippets: the wire model, cutting a WFDB record into snippets, the replay schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_agent.agent import _chunks
from edge_agent.outbox import OutboxRow
from edge_agent.replay import (
    ReplayError,
    WaveformSchedule,
    ecg_snippets,
    load_wfdb_waveform,
)
from vitals import Reading, WaveformBatch, WaveformSnippet, decode, encode, encode_samples

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
MITDB_100 = Path("/work/shared/data/mitdb_af_and_nsr/100")


def snippet(**changes: object) -> WaveformSnippet:
    fields: dict[str, object] = {
        "subject": "s-1",
        "device": "ecg-1",
        "channel": "ecg_ii",
        "start": T0,
        "sample_rate_hz": 360,
        "scale": 0.005,
        "samples": encode_samples([0.0, -0.145, 1.2], 0.005),
        "source": "replay",
    }
    fields.update(changes)
    return WaveformSnippet.model_validate(fields)


def test_the_wire_format_round_trips_and_keeps_millivolts() -> None:
    item = snippet()
    assert item.counts() == [0, -29, 240]
    assert item.values_mv() == pytest.approx([0.0, -0.145, 1.2])
    assert (item.n_samples, item.key) == (3, ("ecg-1", "ecg_ii", T0))
    assert decode(encode(item), WaveformSnippet) == item
    batch = WaveformBatch(batch_id="b1", gateway="gw-1", sent_at=T0, snippets=(item,))
    assert decode(encode(batch), WaveformBatch) == batch


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"channel": "spo2"}, "pattern"),
        ({"channel": "ecg_x9"}, "not in the catalogue"),
        ({"samples": "not base64!"}, "base64"),
        ({"samples": "AA=="}, "int16"),  # one byte
        ({"unit": "uV"}, "mV"),
        ({"scale": 0}, "greater than 0"),
    ],
)
def test_bad_snippets_are_refused(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        snippet(**changes)


def test_encode_samples_refuses_what_int16_cannot_hold() -> None:
    with pytest.raises(ValueError, match="int16"):
        encode_samples([200.0], 0.005)
    with pytest.raises(ValueError, match="finite"):
        encode_samples([float("nan")], 0.005)


def test_ecg_snippets_cut_each_lead_every_interval() -> None:
    counts = [[i, -i, 7] for i in range(100)]  # 10 s at 10 Hz, leads MLII, V5 and an unknown
    cut = ecg_snippets(
        ["MLII", "V5", "ABP"], counts, 10.0, [0.005, 0.005, 1.0], snippet_s=2, every_s=3
    )
    assert [(c.offset_s, c.channel) for c in cut][:4] == [
        (0.0, "ecg_ii"),
        (0.0, "ecg_v5"),
        (3.0, "ecg_ii"),
        (3.0, "ecg_v5"),
    ]
    assert len(cut) == 6  # starts 0, 3 and 6 s; one at 9 s would end past the 10 s recorded
    with pytest.raises(ReplayError, match="every_s"):
        ecg_snippets(["MLII"], counts, 10.0, [0.005], snippet_s=5, every_s=2)
    with pytest.raises(ReplayError, match="int16"):
        ecg_snippets(["MLII"], [[40_000]] * 10, 10.0, [0.005], snippet_s=1, every_s=1)


def test_waveform_schedule_releases_complete_snippets_rebased() -> None:
    cut = ecg_snippets(["MLII"], [[1]] * 100, 10.0, [0.005], snippet_s=2, every_s=5)
    schedule = WaveformSchedule(cut, T0, speed=2.0, subject="s-1", device="ecg-1", incident="inc-1")
    assert schedule.due(0.9) == []  # 1.8 recorded seconds: the first snippet is not complete
    first = schedule.due(1.0)
    assert [s.start for s in first] == [T0]
    assert first[0].quality == ("replayed", "replay_offset_s=0")
    assert first[0].incident == "inc-1"
    assert [s.start for s in schedule.due(100)] == [T0 + timedelta(seconds=5 * i) for i in (1,)]
    assert schedule.remaining == 0


@pytest.mark.skipif(not MITDB_100.with_suffix(".dat").is_file(), reason="MIT-BIH 100 absent")
def test_mitdb_record_100_becomes_mlii_and_v5_snippets_in_adc_resolution() -> None:
    cut = load_wfdb_waveform(MITDB_100, snippet_s=10, every_s=60, max_seconds=130)
    assert [(c.offset_s, c.channel, c.n_samples) for c in cut] == [
        (0.0, "ecg_ii", 3600),
        (0.0, "ecg_v5", 3600),
        (60.0, "ecg_ii", 3600),
        (60.0, "ecg_v5", 3600),
        (120.0, "ecg_ii", 3600),
        (120.0, "ecg_v5", 3600),
    ]
    item = WaveformSchedule(cut, T0, subject="s", device="d").due(11)[0]
    assert item.values_mv()[0] == pytest.approx((995 - 1024) / 200)
    assert len(encode(item)) < 11_000  # ~9.9 kB on the wire (docs/edge.md)


def test_waveform_rows_are_batched_eight_at_a_time() -> None:
    reading = Reading(
        subject="s-1", device="d", metric="spo2", value=95, unit="%", time=T0, source="sim"
    )
    rows = [OutboxRow(1, reading, 0)] + [OutboxRow(i + 2, snippet(), 0) for i in range(10)]
    chunks = _chunks(rows, 250, 8)
    assert [(c[0].kind, len(c)) for c in chunks] == [
        ("reading", 1),
        ("waveform", 8),
        ("waveform", 2),
    ]
