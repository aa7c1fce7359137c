"""``vitalstream backtest``: replay a long-format CSV through the rules engine (CONTRACTS.md).

Thin shell: reads and checks the CSV, hands observations to ``alert_rules.backtest`` (pure),
writes ``alerts.jsonl`` and ``scores.csv``, prints the summary with the alert burden.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO
from zoneinfo import ZoneInfoNotFoundError

import typer

from alert_rules.backtest import SubjectReplay, burden_of, replay_subjects
from alert_rules.engine import Observation
from alert_rules.packs import DEFAULT_PACKS, pack_names
from alert_rules.ruleset import EngineConfig, RuleSet, SubjectOverrides, build_ruleset
from vitals import VitalsError, is_identifier
from vitals.catalogue import CATALOGUE
from vitalstream.output import console, emit_json, reject

COLUMNS = ("subject", "time", "metric", "value")
DEFAULT_SCORES = "news2,mews,qsofa,shock_index"
_NO_VALUE = frozenset({"", "nan", "+nan", "-nan"})


class BacktestInputError(VitalsError):
    """A backtest CSV (or overrides file) that cannot be read as the contract says."""

    kind = "malformed"


@dataclass
class ParsedCsv:
    """Observations and what the reader noticed about the times."""

    observations: list[Observation] = field(default_factory=list)
    numeric_times: bool = True
    #: POSIX seconds -> the time as written in the input, so outputs quote it unchanged.
    time_text: dict[float, str] = field(default_factory=dict)


def read_observations(stream: TextIO, *, origin: str = "input") -> ParsedCsv:
    """Parse ``subject,time,metric,value`` rows; ``BacktestInputError`` names the bad row.

    time: ISO 8601 (no offset = UTC) or POSIX seconds; value: a number in the catalogue's
    canonical unit, or empty/NaN for "no value".
    """
    reader = csv.reader(stream)
    try:
        header = [name.strip().lstrip("\ufeff") for name in next(reader)]
    except StopIteration:
        raise BacktestInputError(
            f"{origin} is empty; expected a header {','.join(COLUMNS)}"
        ) from None
    except csv.Error as exc:
        raise BacktestInputError(f"{origin}: not CSV: {exc}") from None
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise BacktestInputError(
            f"{origin}: header needs columns {', '.join(COLUMNS)}; missing {', '.join(missing)} "
            f"(found {', '.join(header) or 'nothing'})"
        )
    i_subject, i_time, i_metric, i_value = (header.index(name) for name in COLUMNS)
    width = max(i_subject, i_time, i_metric, i_value) + 1
    parsed = ParsedCsv()
    times: dict[str, float] = {}
    subjects: set[str] = set()
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < width:
                raise BacktestInputError(f"{origin} line {line}: {len(row)} columns, need {width}")
            subject = row[i_subject].strip()
            if subject not in subjects:
                if not is_identifier(subject):
                    raise BacktestInputError(
                        f"{origin} line {line}: subject {subject!r} is not an identifier "
                        "(letters, digits, _ . : -; no spaces or slashes)"
                    )
                subjects.add(subject)
            metric = row[i_metric].strip()
            if metric not in CATALOGUE:
                raise BacktestInputError(
                    f"{origin} line {line}: metric {metric!r} is not in the catalogue",
                    kind="unknown_metric",
                )
            raw_time = row[i_time].strip()
            moment = times.get(raw_time)
            if moment is None:
                moment = times[raw_time] = _parse_time(raw_time, parsed, origin, line)
                parsed.time_text.setdefault(moment, raw_time)
            parsed.observations.append(
                Observation(subject, metric, moment, _parse_value(row[i_value], origin, line))
            )
    except csv.Error as exc:
        raise BacktestInputError(f"{origin} line {reader.line_num}: not CSV: {exc}") from None
    if not parsed.observations:
        raise BacktestInputError(f"{origin} has a header but no rows")
    return parsed


def _parse_time(raw: str, parsed: ParsedCsv, origin: str, line: int) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise BacktestInputError(f"{origin} line {line}: time {raw!r} is not finite")
        return seconds
    parsed.numeric_times = False
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BacktestInputError(
            f"{origin} line {line}: time {raw!r} is neither ISO 8601 nor seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_value(raw: str, origin: str, line: int) -> float | None:
    text = raw.strip()
    if text.lower() in _NO_VALUE:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BacktestInputError(
            f"{origin} line {line}: value {raw!r} is not a number (empty or NaN = no value)"
        ) from None
    return value if math.isfinite(value) else None


def read_overrides(path: Path) -> dict[str, SubjectOverrides]:
    """Per-subject overrides from JSON: ``{subject: {packs?, parameters?, disabled_rules?}}``."""
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BacktestInputError(f"overrides {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise BacktestInputError(f"overrides {path}: expected an object keyed by subject")
    out: dict[str, SubjectOverrides] = {}
    for subject, item in raw.items():
        if not isinstance(item, dict) or set(item) - {"packs", "parameters", "disabled_rules"}:
            raise BacktestInputError(
                f"overrides {path}: {subject!r} needs an object with packs, parameters, "
                "disabled_rules"
            )
        packs = item.get("packs")
        out[subject] = SubjectOverrides(
            packs=tuple(packs) if packs is not None else None,
            parameters={str(k): float(v) for k, v in item.get("parameters", {}).items()},
            disabled_rules=frozenset(item.get("disabled_rules", ())),
        )
    return out


def _time_text(seconds: float, parsed: ParsedCsv) -> str | float:
    """A time in the input's form: seconds stay seconds, ISO text is quoted as written."""
    if parsed.numeric_times:
        return seconds
    text = parsed.time_text.get(seconds)
    if text is not None:
        return text
    moment = datetime.fromtimestamp(seconds, UTC)  # e.g. a stale alert between readings
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000).isoformat()


def _score_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.3f}"


def write_outputs(
    replays: Iterator[SubjectReplay], out: Path, parsed: ParsedCsv
) -> tuple[list[SubjectReplay], int]:
    """Write alerts.jsonl and scores.csv as subjects finish; returns replays and score rows."""
    out.mkdir(parents=True, exist_ok=True)
    done: list[SubjectReplay] = []
    score_rows = 0
    with (
        (out / "alerts.jsonl").open("w", encoding="utf-8") as alerts_file,
        (out / "scores.csv").open("w", encoding="utf-8", newline="") as scores_file,
    ):
        scores = csv.writer(scores_file)
        scores.writerow(["subject", "time", "score", "value"])
        for replay in replays:
            for alert in replay.alerts:
                record = {
                    "subject": alert.subject,
                    "time": _time_text(alert.time.timestamp(), parsed),
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "message": alert.message,
                }
                alerts_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            for point in replay.scores:
                scores.writerow(
                    [
                        point.subject,
                        _time_text(point.time, parsed),
                        point.score,
                        _score_text(point.value),
                    ]
                )
            score_rows += len(replay.scores)
            # Keep the summary's numbers, drop the bulky score points.
            done.append(
                SubjectReplay(
                    replay.subject,
                    replay.alerts,
                    (),
                    replay.first,
                    replay.last,
                    replay.readings,
                    replay.no_value,
                    replay.late,
                    replay.implausible,
                )
            )
    return done, score_rows


def run_backtest(
    input_path: Path,
    packs: list[str],
    out: Path,
    *,
    timezone: str = "Asia/Shanghai",
    scores: str = DEFAULT_SCORES,
    score_window_min: float = 60.0,
    overrides_path: Path | None = None,
) -> dict[str, Any]:
    """The whole backtest; returns the summary. Typed errors for bad input."""
    names = [name.strip() for item in packs for name in item.split(",") if name.strip()]
    names = names or list(DEFAULT_PACKS)
    overrides = read_overrides(overrides_path) if overrides_path is not None else None
    tracked = [s.strip() for s in scores.split(",") if s.strip()]
    rules: RuleSet = build_ruleset(
        names,
        overrides=overrides,
        config=EngineConfig(timezone=timezone),
        track_scores=tracked,
        score_window_s=score_window_min * 60.0,
    )
    try:
        with input_path.open(encoding="utf-8", newline="") as stream:
            parsed = read_observations(stream, origin=str(input_path))
    except (OSError, UnicodeDecodeError) as exc:
        raise BacktestInputError(f"cannot read {input_path}: {exc}") from None
    console.print(f"backtest: {len(parsed.observations)} rows, packs {', '.join(names)}")
    replays, score_rows = write_outputs(replay_subjects(parsed.observations, rules), out, parsed)
    burden = burden_of(replays, rules)
    return {
        "input": str(input_path),
        "packs": names,
        "pack_versions": {pack.pack: pack.version for pack in rules.packs},
        "timezone": timezone,
        "subjects": len(replays),
        "readings": sum(r.readings for r in replays),
        "no_value": sum(r.no_value for r in replays),
        "late": sum(r.late for r in replays),
        "implausible": sum(r.implausible for r in replays),
        **burden.as_dict(),
        "scores_written": score_rows,
        "out": {"alerts": str(out / "alerts.jsonl"), "scores": str(out / "scores.csv")},
    }


_HELP = "\n\n".join(
    (
        "Replay recorded vital signs through the rules engine, offline.",
        "Input: a long-format CSV with header `subject,time,metric,value` (other columns "
        "ignored). time: ISO 8601 (no offset = UTC) or POSIX seconds; metric: a catalogue name "
        "(heart_rate, spo2, bp_systolic, ...); value in the catalogue's unit, empty or NaN = no "
        "value (never alarms). Values outside the catalogue's plausible range are device faults "
        "and are skipped (counted as `implausible`).",
        "Example: vitalstream backtest --input icu.csv --pack emergency --pack core --out bt "
        "--json",
        "Writes <OUT>/alerts.jsonl (one alert per line: subject, time, rule, severity, message) "
        "and <OUT>/scores.csv (subject,time,score,value: each tracked score whenever one of its "
        "inputs has a reading, from the latest values within --score-window-min), and prints a "
        "summary with alerts per patient-day, per rule and per subject-day. Times in the "
        "outputs are in the input's form (seconds stay seconds).",
        f"Packs: {', '.join(pack_names())} (default: {', '.join(DEFAULT_PACKS)}); see "
        'docs/rules.md. A bad CSV exits 3 with {"error": {"kind", "detail"}} on stdout.',
    )
)


def backtest_command(
    input_path: Annotated[
        Path, typer.Option("--input", help="Long-format CSV: subject,time,metric,value.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for alerts.jsonl, scores.csv.")],
    pack: Annotated[
        list[str] | None,
        typer.Option("--pack", help="Rule pack to run (repeat, or comma-separate)."),
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Local zone for day/night rules and subject-days.")
    ] = "Asia/Shanghai",
    scores: Annotated[
        str, typer.Option("--scores", help="Scores to write to scores.csv (comma-separated).")
    ] = DEFAULT_SCORES,
    score_window_min: Annotated[
        float, typer.Option("--score-window-min", min=1.0, help="Age limit of score inputs.")
    ] = 60.0,
    overrides: Annotated[
        Path | None,
        typer.Option("--overrides", help="JSON {subject: {packs, parameters, disabled_rules}}."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay recorded vital signs through the rules engine, offline."""
    unknown = [
        name.strip()
        for item in pack or []
        for name in item.split(",")
        if name.strip() and name.strip() not in pack_names()
    ]
    if unknown:
        raise typer.BadParameter(
            f"unknown pack(s) {', '.join(unknown)}; known: {', '.join(pack_names())}",
            param_hint="--pack",
        )
    try:
        summary = run_backtest(
            input_path,
            list(pack or []),
            out,
            timezone=timezone,
            scores=scores,
            score_window_min=score_window_min,
            overrides_path=overrides,
        )
    except VitalsError as exc:  # bad CSV, bad overrides, unknown score (PackError)
        reject(exc)
    except (ValueError, ZoneInfoNotFoundError) as exc:  # a misspelt time zone
        reject(BacktestInputError(str(exc), kind="invalid_option"))
    if json_output:
        emit_json(summary)
        return
    typer.echo(
        f"{summary['alerts']} alerts for {summary['subjects']} subjects over "
        f"{summary['patient_days']:.2f} patient-days "
        f"({summary['alerts_per_patient_day']} per patient-day); by rule: "
        f"{summary['alerts_by_rule']}; wrote {summary['out']['alerts']} and "
        f"{summary['out']['scores']}"
    )


backtest_command.__doc__ = _HELP
