"""Skewness of the RR-interval distribution, per interval (private to ``af``).

In atrial fibrillation the RR-interval distribution is unimodal and skewed to the right, with
a long tail of long intervals:

    E. Hashida, T. Tasaki. "Considerations on the nature of irregularity of the sequence of RR
    intervals and the function of the atrioventricular node in atrial fibrillation in man
    based on time series analysis." Japanese Heart Journal 25 (1984) 669-687.
    doi:10.1536/ihj.25.669

fitted it with an Erlang distribution, and

    T. Hennig, P. Maass, J. Hayano, S. Heinrichs. "Exponential distribution of long heart beat
    intervals during atrial fibrillation and their relevance for white noise behaviour in
    power spectrum." arXiv:cond-mat/0605295 (2006).

found an exponential tail of long intervals in 130 long-term AF recordings and not in sinus
rhythm. Sinus rhythm with premature beats has the opposite shape: most intervals sit at the
sinus cycle and the premature (coupling) intervals form a tail of *short* intervals, so the
mean lies at or below the median. ``af`` uses the sign of the skewness as a guard on its
sustained-irregularity path.

Estimator: Pearson's second skewness coefficient ``3 (mean - median) / SD`` of the RR
intervals in a window of ``window`` consecutive intervals. It uses the median rather than the
third moment, so a single very long or very short interval (a missed or extra beat) cannot
decide it. The window is centred on the interval and clamped inside the series at its ends,
as in ``_af_serial``. Cost: a running median (two ``scipy.ndimage.rank_filter`` passes) and a
few cumulative sums.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import rank_filter

FloatArray = NDArray[np.float64]


def rr_skewness(rr_s: FloatArray, *, window: int) -> FloatArray:
    """Pearson's second skewness coefficient of the RR intervals around each interval.

    Positive: the distribution leans right (a tail of long intervals, as in AF). Negative: a
    tail of short intervals (premature beats). A window with no variation at all gives 0. A
    series shorter than ``window`` uses one window spanning all of it.
    """
    size = rr_s.size
    if size == 0:
        return np.zeros(0, dtype=np.float64)
    span = min(window, size)
    lo = np.clip(np.arange(size) - span // 2, 0, size - span)
    # Centre on the series mean first so the cumulative sums stay small (no cancellation).
    centred = rr_s - float(np.mean(rr_s))
    first = np.concatenate(([0.0], np.cumsum(centred)))
    second = np.concatenate(([0.0], np.cumsum(centred**2)))
    mean = (first[lo + span] - first[lo]) / span
    variance = np.maximum((second[lo + span] - second[lo]) / span - mean**2, 0.0)
    median = _running_median(centred, span)[lo + span // 2]
    sd = np.sqrt(variance)
    result: FloatArray = np.divide(
        3.0 * (mean - median),
        sd,
        out=np.zeros(size, dtype=np.float64),
        where=sd > 1e-9,
    )
    return result


def _running_median(values: FloatArray, span: int) -> FloatArray:
    """Median of ``values[i - span//2 : i - span//2 + span]`` at each ``i`` (edges padded).

    ``rank_filter``'s window of ``span`` values at ``i`` starts at ``i - span//2``, like the
    windows above. For an even span the median is the mean of the two middle values.
    """
    upper = rank_filter(values, rank=span // 2, size=span, mode="nearest")
    if span % 2:
        result: FloatArray = np.asarray(upper, dtype=np.float64)
        return result
    lower = rank_filter(values, rank=span // 2 - 1, size=span, mode="nearest")
    result = np.asarray(0.5 * (lower + upper), dtype=np.float64)
    return result
