"""``vitalstream rhythm``: rhythm analysis from beat times (CONTRACTS.md).

Thin shell: reads the beats CSV, hands the times to the pure detector in ``alert_rules.af``,
and prints the contract's JSON or a human summary.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from alert_rules.af import MIN_BEATS, AfResult, BeatTimesError, detect_af
from vitals import VitalsError
from vitalstream.output import emit_json, reject

rhythm_app = typer.Typer(help="Rhythm analysis from beat times.", no_args_is_help=True)


@rhythm_app.callback()
def _rhythm() -> None:
    """Rhythm analysis from beat times (e.g. `vitalstream rhythm af --beats beats.csv`)."""


#: The one column the beats CSV must have (CONTRACTS.md); any other column is ignored.
TIME_COLUMN = "time_s"


class BeatsCsvError(VitalsError):
    """A beats CSV that cannot be read as one beat time per row."""

    kind = "malformed"


_AF_HELP = "\n\n".join(
    (
        "Screen a beat series for atrial fibrillation (AF).",
        f"Reads a CSV with a header row and a `{TIME_COLUMN}` column: one detected beat (QRS or "
        "pulse) per row, in seconds from the start of the record, strictly increasing. Other "
        "columns (e.g. `label`) are ignored. `--beats -` reads standard input.",
        "Example CSV:\n\n    time_s,label\n    0.442,N\n    1.153,N\n    1.861,V",
        "Example: vitalstream rhythm af --beats record201.csv --json",
        'prints {"episodes": [{"start_s": 0.44, "end_s": 378.03}, ...], "af_burden": 0.378}: '
        "the AF episodes (first to last beat of each run of AF intervals) and the fraction of "
        "analysed time in AF (0..1). RR intervals outside 150-3000 ms are gaps and are not "
        "analysed.",
        "Method: the RR-interval detector of Petrenas, Marozas & Sornmo, Comput Biol Med 2015 "
        "(ectopic-beat median filter, bigeminy suppression, 8-beat irregularity window) with "
        "the paper's parameters, each AF call confirmed by the coefficient of sample entropy "
        "(COSEn, Lake & Moorman 2011) over 64 intervals and by uncorrelated successive RR "
        "intervals (lag-1 correlation over 128 intervals > -0.35, Bootsma et al. 1970), which "
        "rejects ectopy; slow AF is also found by a rate-independent path (long runs that pass "
        "COSEn, that correlation and a right-skewed RR test); see docs/af-screening.md for the "
        "evaluation. A screening aid, not a diagnosis: "
        "confirm AF on the ECG.",
        f"A bad CSV (no `{TIME_COLUMN}` column, a non-numeric or non-finite time, times not "
        f"strictly increasing, fewer than {MIN_BEATS} beats) exits 3 with "
        '{"error": {"kind", "detail"}} on stdout.',
    )
)


def read_beat_times(text: str) -> list[float]:
    """Beat times from the CSV text, or ``BeatsCsvError`` naming the offending row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in (reader.fieldnames or [])]
    if TIME_COLUMN not in header:
        found = ", ".join(repr(name) for name in header) or "no header at all"
        raise BeatsCsvError(
            f"the beats CSV needs a {TIME_COLUMN!r} column (seconds from record start); "
            f"found {found}"
        )
    reader.fieldnames = header
    times: list[float] = []
    for row in reader:
        raw = (row.get(TIME_COLUMN) or "").strip()
        line = reader.line_num
        try:
            value = float(raw)
        except ValueError:
            raise BeatsCsvError(
                f"line {line}: {TIME_COLUMN} {raw!r} is not a number of seconds"
            ) from None
        if not math.isfinite(value):
            raise BeatsCsvError(f"line {line}: {TIME_COLUMN} {raw!r} is not a finite time")
        times.append(value)
    return times


def _read_text(beats: Path) -> str:
    """The CSV text; a path that cannot be opened is a usage error (exit 2), not a rejection."""
    if str(beats) == "-":
        return sys.stdin.read()
    try:
        return beats.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BeatsCsvError(f"{beats} is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {beats}: {exc.strerror}", param_hint="--beats"
        ) from None


def _payload(result: AfResult) -> dict[str, object]:
    return {
        "episodes": [
            {"start_s": episode.start_s, "end_s": episode.end_s} for episode in result.episodes
        ],
        "af_burden": result.af_burden,
    }


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _summary(result: AfResult, beat_count: int) -> str:
    lines = [
        f"{beat_count} beats, {result.analysed_s / 60:.1f} min analysed; "
        f"AF burden {100 * result.af_burden:.1f} %, {len(result.episodes)} episode(s)"
    ]
    lines.extend(
        f"  AF {_clock(episode.start_s)} - {_clock(episode.end_s)} ({episode.duration_s:.0f} s)"
        for episode in result.episodes
    )
    lines.append("Screening aid only (RR-interval irregularity); confirm AF on the ECG.")
    return "\n".join(lines)


@rhythm_app.command("af", help=_AF_HELP)
def af_command(
    beats: Annotated[
        Path,
        typer.Option(
            "--beats",
            help="CSV with a `time_s` column, one beat per row (`-` for stdin).",
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"episodes": [...], "af_burden": float} on stdout.'),
    ] = False,
) -> None:
    """AF episodes and burden from beat times."""
    try:
        times = read_beat_times(_read_text(beats))
        result = detect_af(times)
    except (BeatsCsvError, BeatTimesError) as error:
        reject(error)
    if as_json:
        emit_json(_payload(result))
    else:
        typer.echo(_summary(result, len(times)))
