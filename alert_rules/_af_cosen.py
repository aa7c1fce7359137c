"""Coefficient of sample entropy (COSEn) of RR intervals, per interval (private to ``af``).

    D. E. Lake, J. R. Moorman. "Accurate estimation of entropy in very short physiological
    time series: the problem of atrial fibrillation detection in implanted ventricular
    devices." Am J Physiol Heart Circ Physiol 300 (2011) H319-H325. doi:10.1152/ajpheart.00561.2010

``COSEn = SampEn + ln(2r) - ln(mean RR)`` with template length m = 1, tolerance r and RR in
seconds. ``SampEn = -ln(A/B)``: B counts pairs of single intervals within r of each other, A
the pairs whose *next* intervals also match. In AF successive intervals are nearly independent,
so a match does not predict the next one (high SampEn); in sinus rhythm with ectopy the RR
series takes a few recurring values (normal, coupling, compensatory pause) in recurring
orders, so matches predict matches (low SampEn). ``ln(2r)`` turns SampEn into a density
estimate independent of r, and ``- ln(mean RR)`` normalises for heart rate.

Local version (ours): the pairs ``(i, i + d)``, ``1 <= d <= W - 2``, are counted at their
first interval ``i`` and those counts are summed over a centred window of ``W`` intervals.
Cost: ``W`` vectorised passes over the series.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import uniform_filter1d

FloatArray = NDArray[np.float64]


def local_cosen(rr_s: FloatArray, *, window: int, tolerance_s: float) -> FloatArray:
    """COSEn at each interval over a centred window of ``window`` intervals (see module doc).

    With no matching pair of templates in a window (A = 0), A is taken as 0.5: wide scatter,
    i.e. a high, AF-like COSEn, rather than an undefined value.
    """
    size = rr_s.size
    if size == 0:
        return np.zeros(0, dtype=np.float64)
    span = min(window, size)
    single = np.zeros(size, dtype=np.float64)
    double = np.zeros(size, dtype=np.float64)
    for lag in range(1, span - 1):
        match = np.abs(rr_s[lag:] - rr_s[:-lag]) <= tolerance_s
        single[: size - lag] += match
        double[: size - lag - 1] += match[:-1] & match[1:]
    pairs_b = uniform_filter1d(single, span, mode="nearest") * span
    pairs_a = uniform_filter1d(double, span, mode="nearest") * span
    mean_rr = uniform_filter1d(rr_s, span, mode="nearest")
    sample_entropy = -np.log(np.maximum(pairs_a, 0.5) / np.maximum(pairs_b, 1.0))
    result: FloatArray = sample_entropy + np.log(2.0 * tolerance_s) - np.log(mean_rr)
    return result
