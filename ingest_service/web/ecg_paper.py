"""An ECG snippet on standard ECG paper, as SVG built on the server (pure; docs/web.md, R7).

**Scale.** Standard paper: 25 mm/s and 10 mm/mV, a 1 mm minor and a 5 mm major grid. The SVG's
user unit is one millimetre (``viewBox`` in mm, ``width``/``height`` in ``mm``), so 1 s of
signal is 25 units and 1 mV is 10 units; printed at 100 % the strip is true paper size. On a
screen a CSS millimetre is 96/25.4 px, not a physical millimetre, and a narrow window scales
the picture down: the grid, not the ruler, is what a reader measures with (as on paper, where
the 1 mV calibration pulse at the start of each row proves the gain).

Everything is drawn with SVG presentation attributes (no ``style`` attribute, no script), so
the page keeps its Content-Security-Policy.

**Beats.** The ``waveforms`` table holds samples, not beat annotations, so the R peaks the AF
detector needs are found here with a simplified Pan-Tompkins detector:

    J. Pan, W. J. Tompkins. "A real-time QRS detection algorithm." IEEE Transactions on
    Biomedical Engineering 32(3) (1985) 230-236. doi:10.1109/TBME.1985.325532

band-pass 5-15 Hz, derivative, squaring, 150 ms moving-window integration, then peaks of the
integrated signal above a threshold at least 200 ms apart (the refractory period), each placed
on the largest band-passed deflection of the preceding 150 ms, which must reach 0.1 mV.
Simplified: the threshold is a fixed fraction of this strip's own integrated level instead
of the paper's adaptive signal and noise estimates, and there is no search-back for missed
beats or T-wave discrimination. It is checked against the cardiologists' annotations of
MIT-BIH record 100 in the tests; it is a helper for a strip a person is reading, not a
validated beat detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, filtfilt, find_peaks

#: Paper speed, mm per second.
MM_PER_S = 25.0
#: Gain, mm per millivolt.
MM_PER_MV = 10.0
#: Grid spacing, mm.
MINOR_MM = 1.0
MAJOR_MM = 5.0
#: Seconds of signal per row (a standard rhythm strip is 10 s = 250 mm).
ROW_S = 10.0
#: Height of one row, mm: +-2 mV around the baseline is on the paper (taller QRS is clipped).
ROW_MM = 40.0
#: The calibration pulse at the start of each row: 1 mV (10 mm) for 200 ms (5 mm).
CAL_MV = 1.0
CAL_S = 0.2
#: Blank paper before the trace starts (holds the calibration pulse), mm.
LEAD_IN_MM = 10.0

#: Pan-Tompkins band (Hz), integration window and refractory period (s), peak threshold.
QRS_BAND_HZ = (5.0, 15.0)
INTEGRATION_S = 0.150
REFRACTORY_S = 0.200
#: A peak must reach this fraction of the strip's 98th-percentile integrated value.
THRESHOLD_FRACTION = 0.3
#: A beat's band-passed deflection must reach this, mV (ours: keeps a flat or slow wave from
#: yielding "beats" out of noise, as a threshold relative to the strip alone would).
MIN_QRS_MV = 0.1
#: Shortest strip worth searching, seconds (a band-pass filter needs some signal).
MIN_DETECT_S = 2.0

FloatArray = NDArray[np.float64]


def x_mm(t_s: float) -> float:
    """Horizontal position on the paper of a time (s from the row's start): 25 mm/s."""
    return t_s * MM_PER_S


def y_mm(value_mv: float, baseline_mm: float) -> float:
    """Vertical position (SVG y grows downward) of a voltage around a baseline: 10 mm/mV."""
    return baseline_mm - value_mv * MM_PER_MV


def trace_path(
    samples_mv: Sequence[float] | FloatArray,
    sample_rate_hz: float,
    *,
    baseline_mm: float,
    x0_mm: float = 0.0,
    digits: int = 2,
) -> str:
    """The SVG path data (``M … L …``) of samples drawn at 25 mm/s and 10 mm/mV.

    Sample ``i`` is at x = ``x0_mm`` + 25 * i / fs and y = ``baseline_mm`` - 10 * value.
    """
    if sample_rate_hz <= 0:
        raise ValueError("sample rate must be positive")
    values = np.asarray(samples_mv, dtype=np.float64)
    if values.size == 0:
        return ""
    xs = x0_mm + np.arange(values.size, dtype=np.float64) * (MM_PER_S / sample_rate_hz)
    ys = baseline_mm - values * MM_PER_MV
    points = [f"{x:.{digits}f} {y:.{digits}f}" for x, y in zip(xs, ys, strict=True)]
    return "M" + " L".join(points)


def grid_path(width_mm: float, height_mm: float, step_mm: float) -> str:
    """Vertical and horizontal lines every ``step_mm`` over a ``width`` x ``height`` area."""
    parts: list[str] = []
    columns = round(width_mm / step_mm)
    rows = round(height_mm / step_mm)
    for i in range(columns + 1):
        x = i * step_mm
        parts.append(f"M{x:g} 0V{height_mm:g}")
    for j in range(rows + 1):
        y = j * step_mm
        parts.append(f"M0 {y:g}H{width_mm:g}")
    return "".join(parts)


def calibration_path(baseline_mm: float, x0_mm: float = 2.0) -> str:
    """The 1 mV, 200 ms calibration pulse (10 mm tall, 5 mm wide) ending on the baseline."""
    top = y_mm(CAL_MV, baseline_mm)
    width = x_mm(CAL_S)
    return (
        f"M{x0_mm:g} {baseline_mm:g}H{x0_mm + 1:g}V{top:g}H{x0_mm + 1 + width:g}"
        f"V{baseline_mm:g}H{x0_mm + 2 + width:g}"
    )


@dataclass(frozen=True, slots=True)
class PaperRow:
    """One row of the strip: its vertical offset and what is drawn on it."""

    top_mm: float
    start_s: float
    seconds: float
    trace: str
    calibration: str
    label: str


@dataclass(frozen=True, slots=True)
class Paper:
    """A strip ready for the template: size in mm, grid paths and one row per 10 s."""

    width_mm: float
    height_mm: float
    minor: str
    major: str
    rows: tuple[PaperRow, ...]


def ecg_paper(
    samples_mv: Sequence[float] | FloatArray,
    sample_rate_hz: float,
    *,
    row_s: float = ROW_S,
) -> Paper:
    """The samples laid out on paper, ``row_s`` seconds per row, rows stacked downward.

    Row coordinates are local to the row (the template moves each row by ``top_mm``): the
    trace starts after :data:`LEAD_IN_MM` of blank paper holding the calibration pulse.
    """
    values = np.asarray(samples_mv, dtype=np.float64)
    per_row = max(round(row_s * sample_rate_hz), 1)
    count = max(int(np.ceil(values.size / per_row)), 1)
    width = LEAD_IN_MM + x_mm(row_s)
    baseline = ROW_MM / 2
    rows: list[PaperRow] = []
    for index in range(count):
        chunk = values[index * per_row : (index + 1) * per_row]
        start = index * row_s
        rows.append(
            PaperRow(
                top_mm=index * ROW_MM,
                start_s=start,
                seconds=chunk.size / sample_rate_hz,
                trace=trace_path(chunk, sample_rate_hz, baseline_mm=baseline, x0_mm=LEAD_IN_MM),
                calibration=calibration_path(baseline),
                label=f"{start:g}-{start + chunk.size / sample_rate_hz:g} s",
            )
        )
    height = count * ROW_MM
    return Paper(
        width_mm=width,
        height_mm=height,
        minor=grid_path(width, height, MINOR_MM),
        major=grid_path(width, height, MAJOR_MM),
        rows=tuple(rows),
    )


def detect_r_peaks(samples_mv: Sequence[float] | FloatArray, sample_rate_hz: float) -> FloatArray:
    """R-peak times (s from the snippet's start) by the simplified Pan-Tompkins detector above.

    Returns an empty array for a strip shorter than :data:`MIN_DETECT_S`, a flat line, or a
    sample rate too low for the 5-15 Hz band.
    """
    values = np.asarray(samples_mv, dtype=np.float64)
    fs = float(sample_rate_hz)
    low, high = QRS_BAND_HZ
    if values.size < MIN_DETECT_S * fs or fs <= 2 * high or not np.all(np.isfinite(values)):
        return np.zeros(0, dtype=np.float64)
    b, a = butter(2, [low / (fs / 2), high / (fs / 2)], btype="bandpass")
    filtered: FloatArray = np.asarray(filtfilt(b, a, values - values.mean()), dtype=np.float64)
    squared = np.gradient(filtered) ** 2
    window = max(round(INTEGRATION_S * fs), 1)
    integrated = np.convolve(squared, np.ones(window) / window, mode="full")[: values.size]
    level = float(np.percentile(integrated, 98))
    if level <= 0:
        return np.zeros(0, dtype=np.float64)
    peaks, _ = find_peaks(
        integrated,
        height=THRESHOLD_FRACTION * level,
        distance=max(round(REFRACTORY_S * fs), 1),
    )
    beats: list[int] = []
    for peak in peaks:
        start = max(int(peak) - window, 0)
        segment = np.abs(filtered[start : int(peak) + 1])
        r = start + int(np.argmax(segment))
        if float(segment.max()) < MIN_QRS_MV:
            continue
        if not beats or r - beats[-1] >= REFRACTORY_S * fs:
            beats.append(r)
    return np.asarray(beats, dtype=np.float64) / fs
