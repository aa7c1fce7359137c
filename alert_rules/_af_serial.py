"""Lag-1 serial correlation of RR intervals, per interval (private to ``af``).

In atrial fibrillation successive RR intervals are close to uncorrelated:

    B. K. Bootsma, A. J. Hoelen, J. Strackee, F. L. Meijler. "Analysis of R-R intervals in
    patients with atrial fibrillation at rest and during exercise." Circulation 41 (1970)
    783-794.

found first- and higher-order serial autocorrelation coefficients not different from zero at
rest and about +0.07 during exercise. Premature beats do the opposite: each short coupling
interval is followed by a long (compensatory or resetting) pause, so an RR series whose
variability comes mostly from ectopic beats, as in frequent PVCs, bigeminy, trigeminy or
couplets with varying coupling, has a strongly negative lag-1 correlation (about -0.5 for a
pure short-long pattern). ``af`` uses this as an ectopy guard: an interval is not AF where
the local lag-1 correlation is far below AF's zero.

Estimator (ours): for a window of ``window`` consecutive intervals with mean ``m``,

    rho = sum (r(i) - m)(r(i+1) - m) / sqrt(sum (r(i) - m)^2 * sum (r(i+1) - m)^2)

with the sums over the ``window - 1`` successive pairs inside the window. The window is
centred on the interval and clamped inside the series at its ends, so every value uses a
full window. By the Cauchy-Schwarz inequality ``-1 <= rho <= 1``. Cost: a few cumulative
sums, whatever the window.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def lag1_serial_correlation(rr_s: FloatArray, *, window: int) -> FloatArray:
    """Lag-1 autocorrelation of the RR intervals around each interval (see module doc).

    A window with no variation at all (every interval equal) has no correlation to measure
    and gives 0. A series shorter than ``window`` uses one window spanning all of it; fewer
    than 3 intervals give 0 everywhere.
    """
    size = rr_s.size
    if size < 3:
        return np.zeros(size, dtype=np.float64)
    span = min(window, size)
    lo = np.clip(np.arange(size) - span // 2, 0, size - span)
    hi = lo + span - 1  # pairs (i, i + 1) for i in [lo, hi): the span - 1 pairs of the window

    def window_sum(values: FloatArray) -> FloatArray:
        cumulative = np.concatenate(([0.0], np.cumsum(values)))
        result: FloatArray = cumulative[hi] - cumulative[lo]
        return result

    # Centre on the series mean first so the cumulative sums stay small (no cancellation).
    centred = rr_s - float(np.mean(rr_s))
    first, second = centred[:-1], centred[1:]
    pairs = span - 1
    mean = (window_sum(first) + centred[hi]) / span  # mean of the window's span intervals
    sum_first = window_sum(first)
    sum_second = window_sum(second)
    covariance = window_sum(first * second) - mean * (sum_first + sum_second) + pairs * mean**2
    var_first = window_sum(first**2) - 2 * mean * sum_first + pairs * mean**2
    var_second = window_sum(second**2) - 2 * mean * sum_second + pairs * mean**2
    scale = np.sqrt(np.maximum(var_first, 0.0) * np.maximum(var_second, 0.0))
    result: FloatArray = np.divide(
        covariance,
        scale,
        out=np.zeros(size, dtype=np.float64),
        where=scale > 1e-12 * span,
    )
    return np.clip(result, -1.0, 1.0)
