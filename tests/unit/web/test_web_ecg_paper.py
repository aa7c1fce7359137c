"""ECG paper geometry (25 mm/s, 10 mm/mV, 1/5 mm grid) and the R-peak finder, on synthetic
samples (labelled synthetic: a 1 mV square step and a spike train, not a recording)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ingest_service.web.ecg import af_finding, samples_mv
from ingest_service.web.ecg_paper import (
    LEAD_IN_MM,
    ROW_MM,
    calibration_path,
    detect_r_peaks,
    ecg_paper,
    grid_path,
    trace_path,
    x_mm,
    y_mm,
)


def _points(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"([-\d.]+) ([-\d.]+)", path)]


def test_one_second_is_25_mm_and_one_millivolt_is_10_mm() -> None:
    assert x_mm(1.0) == 25.0 and x_mm(0.04) == pytest.approx(1.0)  # one small square
    assert y_mm(1.0, baseline_mm=20.0) == 10.0  # 10 mm above the baseline (y grows down)
    assert y_mm(-0.5, baseline_mm=20.0) == 25.0
    fs = 500.0
    synthetic = np.zeros(int(2 * fs) + 1)
    synthetic[int(fs) :] = 1.0  # synthetic: 0 mV for 1 s, then 1 mV
    points = _points(trace_path(synthetic, fs, baseline_mm=20.0))
    assert points[0] == (0.0, 20.0)
    assert points[int(fs)] == (25.0, 10.0)  # sample at t = 1 s: x 25 mm, 1 mV -> 10 mm up
    assert points[-1] == (50.0, 10.0)  # 2 s -> 50 mm
    shifted = _points(trace_path([0.0, 2.0], 250.0, baseline_mm=0.0, x0_mm=10.0))
    assert shifted == [(10.0, 0.0), (10.1, -20.0)]  # 4 ms = 0.1 mm; 2 mV = 20 mm


def test_grid_has_1_mm_minor_and_5_mm_major_lines() -> None:
    minor = grid_path(10.0, 5.0, 1.0)
    assert minor.count("V5") == 11 and minor.count("H10") == 6
    major = grid_path(260.0, 40.0, 5.0)
    xs = [float(x) for x in re.findall(r"M([\d.]+) 0V", major)]
    assert xs[:3] == [0.0, 5.0, 10.0] and xs[-1] == 260.0


def test_paper_rows_of_ten_seconds_with_a_1_mv_calibration_pulse() -> None:
    fs = 360.0
    synthetic = np.sin(np.arange(int(25 * fs)) / fs * 2 * np.pi)  # synthetic 25 s, 1 Hz
    paper = ecg_paper(synthetic, fs)
    assert paper.width_mm == LEAD_IN_MM + 250.0
    assert len(paper.rows) == 3 and paper.height_mm == 3 * ROW_MM
    assert [r.top_mm for r in paper.rows] == [0.0, ROW_MM, 2 * ROW_MM]
    assert paper.rows[2].seconds == pytest.approx(5.0)
    last = _points(paper.rows[0].trace)[-1]
    assert last[0] == pytest.approx(LEAD_IN_MM + 250.0 - 25.0 / fs, abs=0.01)
    cal = calibration_path(20.0)
    assert "V10" in cal  # 1 mV = 10 mm above a 20 mm baseline
    assert cal == "M2 20H3V10H8V20H9"  # 5 mm wide = 200 ms


def test_samples_are_int16_counts_times_scale() -> None:
    raw = np.array([200, -100, 0], dtype="<i2").tobytes()
    assert samples_mv(raw, 0.005).tolist() == pytest.approx([1.0, -0.5, 0.0])


def _spike_train(times: list[float], fs: float, seconds: float) -> np.ndarray:
    """Synthetic: narrow 1.5 mV triangular spikes (QRS-like) at ``times`` on a flat line."""
    out = np.zeros(int(seconds * fs))
    for t in times:
        i = int(t * fs)
        for k in range(-8, 9):
            if 0 <= i + k < out.size:
                out[i + k] = 1.5 * (1 - abs(k) / 9)
    return out


def test_r_peaks_found_on_a_synthetic_regular_rhythm_and_not_enough_data_when_short() -> None:
    fs = 360.0
    times = [0.5 + 0.8 * n for n in range(12)]
    found = detect_r_peaks(_spike_train(times, fs, 10.0), fs)
    assert found.size == 12
    assert np.max(np.abs(found - np.array(times))) < 0.02
    finding = af_finding(found, 10.0)
    assert finding["status"] == "no_af" and finding["heart_rate_bpm"] == 75
    assert detect_r_peaks(np.zeros(3600), fs).size == 0  # flat line
    assert detect_r_peaks(np.zeros(100), fs).size == 0  # too short
    few = af_finding(np.array([0.5, 1.3, 2.1]), 3.0)
    assert few["status"] == "not_enough_data" and few["af_burden"] is None
