"""Atrial-fibrillation screening from beat times (pure; CONTRACTS.md ``vitalstream rhythm af``).

Method: the low-complexity RR-interval detector of

    A. Petrėnas, V. Marozas, L. Sörnmo. "Low-complexity detection of atrial fibrillation in
    continuous long-term monitoring." Computers in Biology and Medicine 65 (2015) 184-191.
    doi:10.1016/j.compbiomed.2015.01.019

Why this one (and not Sarkar 2008 Lorenz plot, Lake & Moorman COSEn or Dash 2009 TPR+RMSSD+ShE):

- It was designed for ectopy. A 3-point median filter removes isolated premature beats before
  irregularity is measured, and a dedicated *bigeminy suppressor* stops the alternating
  short-long pattern of bigeminy (MIT-BIH 201, 203, 210, 219, 221, 222) from reading as AF.
  Lorenz-plot, entropy and TPR/RMSSD detectors all see ectopy as irregularity.
- It works beat by beat with an 8-interval window, so it resolves short paroxysms; COSEn and
  Dash use 12-128 beat segments and smear episode edges.
- It has five parameters, all published (below), so we run it *untuned*: the paper tuned them
  on the Long-Term AF database, a data set disjoint from our MIT-BIH test records, which is
  the honest way to get held-out numbers and the best bet for generalising to long
  Holter/wearable records.
- It is a handful of additions and comparisons per beat: fine on an edge gateway.

Pipeline per RR interval ``n`` (paper section numbers):

1. 2.1 ``r_m(n) = median(r(n-1), r(n), r(n+1))`` removes isolated ectopic intervals;
   ``r̄(n)`` = forward-backward exponential average of ``r`` (the RR trend, seconds).
2. 2.2 ``M(n)`` = fraction of the ``N(N-1)/2`` pairs in the last ``N`` median-filtered
   intervals that differ by at least ``gamma``; smoothed to ``M̃(n)``; irregularity ratio
   ``I(n) = M̃(n) / r̄(n)`` (irregularity weighted by heart rate: AF is usually fast, and
   irregular AF below about 60/min can fall under eta).
3. 2.3 ``B(n) = (Σ r_m / Σ r - 1)^2`` over the same window, smoothed to ``B̃(n)``. In bigeminy
   the median filter leaves the alternating series unchanged, so ``B̃ ≈ 0``; in AF it does not.
4. 2.4 Fusion: ``O(n) = I(n)`` where ``B̃(n) ≥ delta``, else ``B̃(n)``; AF where ``O(n) > eta``.
5. Confirmation (ours, 2026-11-25): an interval stays AF only where the local COSEn (Lake &
   Moorman 2011, ``_af_cosen``) over 64 intervals exceeds -1.2. Frequent ectopy (PVC couplets,
   trigeminy, multifocal PVCs) passes steps 1-4 as irregular, but its RR values recur in
   recurring orders, so its sample entropy is low; AF's is high. The threshold was chosen by
   leave-one-record-out cross-validation on the 48 MIT-BIH Arrhythmia records and checked on
   the Long-Term AF database (docs/af-screening.md).
6. Ectopy guard (ours, 2026-11-25): an interval stays AF only where the lag-1 serial
   correlation of the RR intervals over 128 intervals (``_af_serial``) is above -0.35. In AF
   successive RR intervals are uncorrelated (Bootsma et al., Circulation 1970: serial
   autocorrelation indistinguishable from 0 at rest). Premature beats pair a short coupling
   interval with a long pause, so irregularity that comes from ectopy (frequent PVCs,
   bigeminy/trigeminy with varying coupling, couplets) has a strongly negative lag-1
   correlation, about -0.5. Steps 1-5 miss such ectopy when its coupling varies. Window and
   threshold were chosen by leave-one-record-out cross-validation on the 48 MIT-BIH records
   (the same choice in 46 of 48 folds) and checked on the Long-Term AF database.
7. Sustained-irregularity path (ours, 2026-11-26): steps 1-4 divide irregularity by the RR
   trend, so AF with a slow ventricular response (under about 67/min) falls under eta and is
   missed; on the Long-Term AF database it was two thirds of the missed AF. An interval is
   also AF where it lies in a run of at least 160 consecutive intervals that each pass the
   rate-independent tests: no bigeminy (``B̃ ≥ delta``), COSEn above -1.2 (COSEn subtracts
   ``ln(mean RR)``, so it does not fall with the rate), lag-1 serial correlation above -0.35,
   and an RR distribution skewed to the right over 128 intervals (``_af_skew``: AF's RR
   distribution has a tail of long intervals, Hashida & Tasaki 1984, Hennig et al. 2006;
   premature beats give a tail of short ones). The run length was chosen by
   leave-one-record-out cross-validation over the Long-Term AF database and the 48 MIT-BIH
   records together (160 in every fold); the other tests reuse the existing thresholds and
   the sign of the skewness, so they add no tuned value.

Gaps: RR intervals outside the catalogue's plausible ``rr_interval`` range (missed beats,
electrode-off, double detections) are not analysed. They split the series into segments, each
run through the detector on its own, and their time is left out of the burden's denominator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from alert_rules._af_cosen import local_cosen
from alert_rules._af_serial import lag1_serial_correlation
from alert_rules._af_skew import rr_skewness
from vitals import VitalsError, metric

# --- Published parameters (Petrėnas, Marozas & Sörnmo 2015, section 2 and Table 1) ---------
#: Length of the sliding window of RR intervals for M(n) and B(n) (paper: N = 8).
WINDOW_INTERVALS = 8
#: Two intervals are "different" when they differ by at least gamma seconds (paper: gamma = 0.03 s).
PAIR_DIFFERENCE_S = 0.03
#: Smoothing factor of the forward-backward exponential averagers (paper: alpha = 0.02).
SMOOTHING_ALPHA = 0.02
#: Bigeminy-suppression threshold on B̃(n) (paper: delta = 2·10⁻⁴).
BIGEMINY_THRESHOLD = 2e-4
#: Decision threshold on O(n) (paper: eta = 0.725; I(n) in 1/s with r̄ in seconds).
DETECTION_THRESHOLD = 0.725

# --- COSEn confirmation (Lake & Moorman 2011; window and threshold ours, see the docs) ---------
#: Intervals in the centred window of the local COSEn.
COSEN_WINDOW_INTERVALS = 64
#: Matching tolerance r of the sample entropy, seconds (the paper's gamma, 30 ms).
COSEN_TOLERANCE_S = PAIR_DIFFERENCE_S
#: AF needs local COSEn above this (leave-one-record-out on the 48 MIT-BIH records: -1.2 for
#: 41 of 48 folds; Lake & Moorman's -1.4 is for 12-beat segments).
COSEN_THRESHOLD = -1.2

# --- Ectopy guard (Bootsma et al. 1970: AF RR intervals are serially uncorrelated) ---------
#: Intervals in the centred window of the lag-1 serial correlation.
SERIAL_WINDOW_INTERVALS = 128
#: AF needs the local lag-1 correlation above this (leave-one-record-out on the 48 MIT-BIH
#: records: -0.35 in 46 of 48 folds). AF itself sits near 0; ectopy-driven irregularity near
#: -0.5; with 128 intervals the sampling error of AF's estimate is about 0.09.
SERIAL_CORRELATION_MIN = -0.35

# --- Sustained-irregularity path (slow AF; Hashida & Tasaki 1984 for the skewness) ----------
#: Fewest consecutive intervals passing the rate-independent tests for the second path to call
#: them AF (leave-one-record-out over LTAF + the 48 MIT-BIH records: 160 in every fold).
SUSTAINED_MIN_INTERVALS = 160
#: Intervals in the centred window of the RR-distribution skewness (the serial guard's window).
SKEW_WINDOW_INTERVALS = SERIAL_WINDOW_INTERVALS
#: The second path needs Pearson's skewness 3 (mean - median) / SD above this: right-skewed.
SKEW_MIN = 0.0

# --- Our own choices, not from the paper ----------------------------------------------------
_RR_SPEC = metric("rr_interval")
#: Shortest RR interval analysed, seconds: the catalogue's plausible range (150 ms).
MIN_RR_S = _RR_SPEC.plausible_min / 1000.0
#: Longest RR interval analysed, seconds (3000 ms): longer is a gap (missed beats, lead off).
MAX_RR_S = _RR_SPEC.plausible_max / 1000.0
#: A segment needs one full detection window to be analysed at all.
MIN_SEGMENT_INTERVALS = WINDOW_INTERVALS
#: Fewest beats the detector accepts: one full window of RR intervals.
MIN_BEATS = WINDOW_INTERVALS + 1


class BeatTimesError(VitalsError):
    """Beat times the detector cannot analyse (non-finite, not increasing, too few)."""

    kind = "invalid_beats"


@dataclass(frozen=True, slots=True)
class AfEpisode:
    """One run of consecutive RR intervals classified as AF, from its first to its last beat."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Length of the episode in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class AfResult:
    """AF episodes of one record and the fraction of analysed time spent in them.

    ``af_burden`` = AF time / ``analysed_s``; ``analysed_s`` excludes gaps (RR intervals
    outside the plausible range) and segments too short to fill one detection window. A record
    with nothing analysable has ``analysed_s == 0`` and burden 0 — callers that care should
    look at ``analysed_s``, not read the 0 as "no AF".
    """

    episodes: tuple[AfEpisode, ...]
    af_burden: float
    analysed_s: float


FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: Beat times as given by a caller: a list of floats or any float array.
BeatTimes = Sequence[float] | NDArray[np.floating[Any]]


def validate_beat_times(beat_times: BeatTimes) -> FloatArray:
    """Return the beat times as a float array, or raise ``BeatTimesError`` saying what is wrong.

    Beat times are seconds from the record start, one per detected beat, strictly increasing
    (two beats at the same instant are a detector fault, not physiology).
    """
    times = np.asarray(beat_times, dtype=np.float64)
    if times.ndim != 1:
        raise BeatTimesError(f"beat times must be a flat sequence, got shape {times.shape}")
    if times.size < MIN_BEATS:
        raise BeatTimesError(
            f"need at least {MIN_BEATS} beats (one {WINDOW_INTERVALS}-interval detection "
            f"window), got {times.size}",
            kind="too_few_beats",
        )
    if not np.all(np.isfinite(times)):
        bad = int(np.flatnonzero(~np.isfinite(times))[0])
        raise BeatTimesError(f"beat {bad} has a non-finite time ({times[bad]})")
    steps = np.diff(times)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise BeatTimesError(
            f"beat times must be strictly increasing: beat {bad} at {times[bad]} s does not "
            f"follow beat {bad - 1} at {times[bad - 1]} s",
            kind="non_increasing",
        )
    return times


def detect_af(
    beat_times: BeatTimes,
    *,
    threshold: float = DETECTION_THRESHOLD,
    cosen_threshold: float | None = COSEN_THRESHOLD,
    serial_correlation_min: float | None = SERIAL_CORRELATION_MIN,
    sustained_min_intervals: int | None = SUSTAINED_MIN_INTERVALS,
) -> AfResult:
    """AF episodes and burden from beat times in seconds (Petrėnas 2015 + COSEn, guard, slow AF).

    ``threshold`` is eta, the paper's single design parameter: higher trades brief-episode
    sensitivity for fewer false alarms from non-AF arrhythmias. Keep the published value
    unless a study on held-out data says otherwise. ``cosen_threshold`` is the COSEn
    confirmation's threshold and ``serial_correlation_min`` the ectopy guard's; ``None`` turns
    either off (both ``None``: the paper's detector alone). ``sustained_min_intervals`` is the
    run length of the sustained-irregularity path (slow AF); ``None`` turns it off, and it is
    off whenever COSEn or the guard is (it is built from them).

    Raises ``BeatTimesError`` for input the detector cannot analyse.
    """
    times = validate_beat_times(beat_times)
    rr = np.diff(times)
    af_interval = np.zeros(rr.size, dtype=np.bool_)
    analysed = np.zeros(rr.size, dtype=np.bool_)
    for start, stop in _plausible_segments(rr):
        analysed[start:stop] = True
        af_interval[start:stop] = af_intervals(
            rr[start:stop],
            threshold=threshold,
            cosen_threshold=cosen_threshold,
            serial_correlation_min=serial_correlation_min,
            sustained_min_intervals=sustained_min_intervals,
        )
    analysed_s = float(rr[analysed].sum())
    af_s = float(rr[af_interval].sum())
    burden = af_s / analysed_s if analysed_s > 0 else 0.0
    return AfResult(
        episodes=_episodes(times, af_interval),
        af_burden=min(max(burden, 0.0), 1.0),
        analysed_s=analysed_s,
    )


def af_intervals(
    rr_s: FloatArray,
    *,
    threshold: float = DETECTION_THRESHOLD,
    cosen_threshold: float | None = COSEN_THRESHOLD,
    serial_correlation_min: float | None = SERIAL_CORRELATION_MIN,
    sustained_min_intervals: int | None = SUSTAINED_MIN_INTERVALS,
) -> BoolArray:
    """Per-interval AF decision for one gap-free run of RR intervals (seconds).

    Element ``n`` says whether the interval from beat ``n`` to beat ``n + 1`` is AF: the
    paper's detector unchanged, then (unless ``cosen_threshold`` is None) confirmed by the
    local COSEn, then (unless ``serial_correlation_min`` is None) kept only where the local
    lag-1 serial correlation does not say ectopy. Then (unless ``sustained_min_intervals`` or
    either of the two is None) the sustained-irregularity path adds runs of at least
    ``sustained_min_intervals`` intervals that pass the rate-independent tests (module doc,
    step 7). :func:`detect_af` handles gaps around it.
    """
    if rr_s.size == 0:
        return np.zeros(0, dtype=np.bool_)
    rr_median = median3(rr_s)
    rr_trend = exponential_average_fb(rr_s)
    irregularity = exponential_average_fb(pair_difference_fraction(rr_median)) / rr_trend
    bigeminy = exponential_average_fb(bigeminy_index(rr_s, rr_median))
    # Paper 2.4, signal fusion: where B̃ is below delta the rhythm is regular or bigeminal and the
    # output is B̃ itself (far below eta), so bigeminy cannot be called AF.
    output = np.where(bigeminy >= BIGEMINY_THRESHOLD, irregularity, bigeminy)
    decision: BoolArray = output > threshold
    entropy_ok: BoolArray | None = None
    correlation_ok: BoolArray | None = None
    if cosen_threshold is not None:
        entropy = local_cosen(rr_s, window=COSEN_WINDOW_INTERVALS, tolerance_s=COSEN_TOLERANCE_S)
        entropy_ok = entropy > cosen_threshold
        decision &= entropy_ok
    if serial_correlation_min is not None:
        correlation = lag1_serial_correlation(rr_s, window=SERIAL_WINDOW_INTERVALS)
        correlation_ok = correlation > serial_correlation_min
        decision &= correlation_ok
    if (
        sustained_min_intervals is not None
        and entropy_ok is not None
        and correlation_ok is not None
    ):
        # Step 7: no rate weighting. COSEn already normalises for the rate; the skewness and
        # the serial correlation keep out sinus rhythm with frequent premature beats.
        skewness = rr_skewness(rr_s, window=SKEW_WINDOW_INTERVALS)
        sustained = (bigeminy >= BIGEMINY_THRESHOLD) & entropy_ok & correlation_ok
        sustained &= skewness > SKEW_MIN
        decision |= long_runs(sustained, sustained_min_intervals)
    return decision


def long_runs(mask: BoolArray, min_length: int) -> BoolArray:
    """``mask`` with every run of consecutive True shorter than ``min_length`` set False."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    keep = (stops - starts) >= min_length
    marks = np.zeros(mask.size + 1, dtype=np.int64)
    np.add.at(marks, starts[keep], 1)
    np.add.at(marks, stops[keep], -1)
    result: BoolArray = np.cumsum(marks[:-1]) > 0
    return result


def median3(values: FloatArray) -> FloatArray:
    """3-point median filter (paper 2.1); the end points are kept, as a 2-point median would."""
    if values.size < 3:
        return values.copy()
    out = values.copy()
    stacked = np.stack((values[:-2], values[1:-1], values[2:]))
    out[1:-1] = np.median(stacked, axis=0)
    return out


def exponential_average_fb(values: FloatArray, alpha: float = SMOOTHING_ALPHA) -> FloatArray:
    """Forward-backward exponential averager ``y(n) = (1-alpha) y(n-1) + alpha x(n)`` (paper 2.1).

    Running it forwards then backwards cancels the phase lag, so the trend is not delayed
    relative to the beats (the detector is offline over a record). The forward pass starts
    from the mean of the first window rather than from zero, so the record's first beats are
    not pulled towards "regular" while the average warms up (the paper's detector runs
    continuously and has no start-up).
    """
    if values.size == 0:
        return values.copy()
    b = np.array([alpha])
    a = np.array([1.0, alpha - 1.0])
    start = float(np.mean(values[:WINDOW_INTERVALS]))
    forward = lfilter(b, a, values, zi=np.array([(1.0 - alpha) * start]))[0]
    backward = lfilter(b, a, forward[::-1], zi=np.array([(1.0 - alpha) * forward[-1]]))[0]
    result: FloatArray = np.asarray(backward[::-1], dtype=np.float64)
    return result


def pair_difference_fraction(rr_median: FloatArray) -> FloatArray:
    """M(n): fraction of interval pairs in the last N that differ by ≥ gamma (paper 2.2, eq. 2).

    Before the first full window there are fewer pairs; M is the fraction of those that
    exist (the paper's detector runs continuously and never meets a record start). With a
    single interval there is no pair, and M takes the value of the next window.
    """
    window = WINDOW_INTERVALS
    size = rr_median.size
    count = np.zeros(size, dtype=np.float64)
    pairs = np.zeros(size, dtype=np.float64)
    for j in range(window - 1):
        for k in range(j + 1, window):
            # The pair (n - j, n - k) exists from n = k on.
            newer = rr_median[k - j : size - j]
            older = rr_median[: size - k]
            count[k:] += np.abs(newer - older) >= PAIR_DIFFERENCE_S
            pairs[k:] += 1.0
    fraction: FloatArray = np.divide(count, pairs, out=np.zeros(size), where=pairs > 0)
    if size > 1:
        fraction[0] = fraction[1]
    return fraction


def bigeminy_index(rr_s: FloatArray, rr_median: FloatArray) -> FloatArray:
    """B(n) = (Σ r_m / Σ r - 1)² over the last N intervals (paper 2.3, eq. 4)."""
    window = WINDOW_INTERVALS
    sum_median = _trailing_sum(rr_median, window)
    sum_raw = _trailing_sum(rr_s, window)
    index: FloatArray = (sum_median / sum_raw - 1.0) ** 2
    return index


def _trailing_sum(values: FloatArray, window: int) -> FloatArray:
    """Sum of the last ``window`` values at each n (fewer at the start)."""
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    result: FloatArray = cumulative[ends] - cumulative[starts]
    return result


def _plausible_segments(rr_s: FloatArray) -> list[tuple[int, int]]:
    """Half-open index ranges of runs of plausible RR intervals long enough to analyse."""
    plausible = (rr_s >= MIN_RR_S) & (rr_s <= MAX_RR_S)
    edges = np.diff(np.concatenate(([0], plausible.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [
        (int(start), int(stop))
        for start, stop in zip(starts, stops, strict=True)
        if stop - start >= MIN_SEGMENT_INTERVALS
    ]


def _episodes(times: FloatArray, af_interval: BoolArray) -> tuple[AfEpisode, ...]:
    """Runs of AF intervals as episodes from the run's first beat to its last beat."""
    edges = np.diff(np.concatenate(([0], af_interval.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return tuple(
        AfEpisode(start_s=float(times[start]), end_s=float(times[stop]))
        for start, stop in zip(starts, stops, strict=True)
    )
