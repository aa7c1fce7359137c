"""MIT-BIH record -> beat times, reference rhythm per beat, and beat-level AF scoring.

Test support (and a script) for ``alert_rules.af``: ``alert_rules`` must not depend on wfdb, so
the reading of PhysioNet annotation files lives here. Only the ``.atr`` annotation files are
read (no signal), which keeps the evaluation cheap.

Script use, writing the beats CSV that ``vitalstream rhythm af --beats`` reads::

    export PYTHONPATH=tests        # from the repository root
    python tests/unit/alert_rules/mitdb_beats.py ../shared/data/mitdb_af_and_nsr/201 > 201.csv
    python tests/unit/alert_rules/mitdb_beats.py --evaluate ../shared/data/mitdb_af_and_nsr
    python tests/unit/alert_rules/mitdb_beats.py --evaluate --breakdown DIR   # FP/FN by rhythm
    python tests/unit/alert_rules/mitdb_beats.py --evaluate --all --stage cosen LTAF_DIR

Scoring (docs/af-screening.md): every annotated beat is scored, positive when the rhythm in
force is ``(AFIB`` (plus ``(AFL`` in the second table), negative for every other rhythm. Beats
before a record's first rhythm annotation have no reference rhythm and are not scored (none in
the shared MIT-BIH records; 92 804 beats of Long-Term AF record 64).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray
from shared_data import MITDB_DIR as _SHARED_MITDB_DIR

from alert_rules.af import (
    COSEN_THRESHOLD,
    SERIAL_CORRELATION_MIN,
    SUSTAINED_MIN_INTERVALS,
    AfEpisode,
    detect_af,
)

MITDB_DIR = _SHARED_MITDB_DIR
RECORDS = ("100", "201", "202", "203", "210", "219", "221", "222")

#: Annotation codes that mark a QRS complex (PhysioNet "Table of beat annotations"); the rest
#: (``+`` rhythm change, ``~`` noise, ``|`` artefact, ``x`` non-conducted P, ``"`` comment …)
#: are not beats.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def _wfdb() -> Any:
    try:
        import wfdb
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise RuntimeError(
            "reading MIT-BIH records needs the 'wfdb' package: pip install -e '.[dev]'"
        ) from exc
    return wfdb


@dataclass(frozen=True)
class AnnotatedBeats:
    """Beats of one record with the reference rhythm in force at each beat."""

    record: str
    times_s: NDArray[np.float64]
    symbols: tuple[str, ...]
    rhythms: tuple[str, ...]  # e.g. "AFIB", "AFL", "N", "B", "T", "VT"; "" before the first

    def truth(self, *, afl_is_af: bool) -> NDArray[np.bool_]:
        """Reference AF per beat: AFIB, plus AFL when ``afl_is_af``."""
        positive = {"AFIB", "AFL"} if afl_is_af else {"AFIB"}
        return np.array([rhythm in positive for rhythm in self.rhythms], dtype=np.bool_)

    def scored(self) -> NDArray[np.bool_]:
        """Beats with a reference rhythm: all but those before the first rhythm annotation."""
        return np.array([rhythm != "" for rhythm in self.rhythms], dtype=np.bool_)


def read_record(path: str | Path) -> AnnotatedBeats:
    """Beats and reference rhythms of a record from its ``.atr`` annotations."""
    annotation = _wfdb().rdann(str(path), "atr")
    fs = float(annotation.fs)
    times: list[float] = []
    symbols: list[str] = []
    rhythms: list[str] = []
    rhythm = ""
    for sample, symbol, aux in zip(
        annotation.sample, annotation.symbol, annotation.aux_note, strict=True
    ):
        note = aux.rstrip("\x00").strip()
        if symbol == "+" and note.startswith("("):
            rhythm = note[1:]
        if symbol in BEAT_SYMBOLS:
            times.append(float(sample) / fs)
            symbols.append(symbol)
            rhythms.append(rhythm)
    return AnnotatedBeats(
        record=Path(path).name,
        times_s=np.asarray(times, dtype=np.float64),
        symbols=tuple(symbols),
        rhythms=tuple(rhythms),
    )


def write_beats_csv(beats: AnnotatedBeats, out: TextIO) -> None:
    """The ``rhythm af --beats`` CSV: ``time_s,label`` (label = annotation symbol, ignored)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_s", "label"])
    for time_s, symbol in zip(beats.times_s, beats.symbols, strict=True):
        writer.writerow([f"{time_s:.4f}", symbol])


def beats_in_episodes(
    times_s: NDArray[np.float64], episodes: Sequence[AfEpisode]
) -> NDArray[np.bool_]:
    """Beat-level detector output: a beat is AF when it lies inside a detected episode."""
    flagged = np.zeros(times_s.size, dtype=np.bool_)
    for episode in episodes:
        flagged |= (times_s >= episode.start_s) & (times_s <= episode.end_s)
    return flagged


@dataclass(frozen=True)
class Confusion:
    """Beat-level confusion counts."""

    tp: int
    fn: int
    tn: int
    fp: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fn + other.fn, self.tn + other.tn, self.fp + other.fp
        )

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None


def confusion(
    truth: NDArray[np.bool_],
    predicted: NDArray[np.bool_],
    scored: NDArray[np.bool_] | None = None,
) -> Confusion:
    """Beat-level counts of detector output against the reference (``scored`` beats only)."""
    if scored is not None:
        truth, predicted = truth[scored], predicted[scored]
    return Confusion(
        tp=int(np.sum(truth & predicted)),
        fn=int(np.sum(truth & ~predicted)),
        tn=int(np.sum(~truth & ~predicted)),
        fp=int(np.sum(~truth & predicted)),
    )


#: Detector stages the script can score: the paper alone, + COSEn, + the ectopy guard, + the
#: sustained-irregularity path for slow AF (``full``, the detector as shipped).
STAGES = ("paper", "cosen", "guard", "full")


def predict(beats: AnnotatedBeats, stage: str = "full") -> NDArray[np.bool_]:
    """Beat-level output of ``detect_af`` (at ``stage``) on a record's reference beat times."""
    result = detect_af(
        beats.times_s,
        cosen_threshold=None if stage == "paper" else COSEN_THRESHOLD,
        serial_correlation_min=SERIAL_CORRELATION_MIN if stage in ("guard", "full") else None,
        sustained_min_intervals=SUSTAINED_MIN_INTERVALS if stage == "full" else None,
    )
    return beats_in_episodes(beats.times_s, result.episodes)


def record_names(directory: str | Path) -> list[str]:
    """Every record in a directory that has an ``.atr`` annotation file, sorted."""
    return sorted(path.stem for path in Path(directory).glob("*.atr"))


def evaluate(
    directory: str | Path = MITDB_DIR,
    records: Iterable[str] = RECORDS,
    *,
    afl_is_af: bool,
    stage: str = "full",
) -> dict[str, Confusion]:
    """Per-record beat-level confusion of ``detect_af`` over annotated MIT-BIH records."""
    result: dict[str, Confusion] = {}
    for record in records:
        beats = read_record(Path(directory) / record)
        result[record] = confusion(
            beats.truth(afl_is_af=afl_is_af), predict(beats, stage), beats.scored()
        )
    return result


def rhythm_breakdown(
    beats: AnnotatedBeats, predicted: NDArray[np.bool_]
) -> dict[str, tuple[int, int]]:
    """Reference rhythm -> (beats flagged AF, beats) for one record."""
    rhythms = np.array(beats.rhythms)
    return {
        rhythm or "(none)": (
            int(predicted[rhythms == rhythm].sum()),
            int((rhythms == rhythm).sum()),
        )
        for rhythm in sorted(set(beats.rhythms))
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _print_table(directory: Path, records: Sequence[str], stage: str) -> None:
    for afl_is_af in (False, True):
        label = "AFIB+AFL positive" if afl_is_af else "AFIB positive, AFL negative"
        table = evaluate(directory, records, afl_is_af=afl_is_af, stage=stage)
        print(f"\n{label}\n| record | AF beats | non-AF beats | TP | FN | TN | FP | Se % | Sp % |")
        print("|---|---|---|---|---|---|---|---|---|")
        total = Confusion(0, 0, 0, 0)
        for record, counts in table.items():
            total = total + counts
            print(
                f"| {record} | {counts.tp + counts.fn} | {counts.tn + counts.fp} | {counts.tp} "
                f"| {counts.fn} | {counts.tn} | {counts.fp} | {_pct(counts.sensitivity)} "
                f"| {_pct(counts.specificity)} |"
            )
        print(
            f"| pooled | {total.tp + total.fn} | {total.tn + total.fp} | {total.tp} | {total.fn} "
            f"| {total.tn} | {total.fp} | {_pct(total.sensitivity)} "
            f"| {_pct(total.specificity)} |"
        )


def _print_breakdown(directory: Path, records: Sequence[str], stage: str) -> None:
    print("\n| record | reference rhythm: beats flagged AF / beats |\n|---|---|")
    for record in records:
        beats = read_record(directory / record)
        parts = rhythm_breakdown(beats, predict(beats, stage))
        print(f"| {record} | " + ", ".join(f"{r} {n}/{t}" for r, (n, t) in parts.items()) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", help="record path without extension, or a directory")
    parser.add_argument(
        "--evaluate", action="store_true", help="print the beat-level table for the directory"
    )
    parser.add_argument(
        "--all", action="store_true", help="evaluate every record in the directory (e.g. LTAF)"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also print flagged beats per reference rhythm"
    )
    parser.add_argument(
        "--stage",
        choices=STAGES,
        default="full",
        help="detector stage: the paper alone, + COSEn, + the ectopy guard, or + the "
        "sustained-irregularity path for slow AF (full, the default)",
    )
    args = parser.parse_args(argv)
    if args.evaluate:
        directory = Path(args.path)
        records = record_names(directory) if args.all else list(RECORDS)
        _print_table(directory, records, args.stage)
        if args.breakdown:
            _print_breakdown(directory, records, args.stage)
    else:
        write_beats_csv(read_record(args.path), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
