"""``vitalstream backtest`` (CONTRACTS.md) and the MIMIC-II negative control."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from mimic_numerics import MIMIC_DIR, RECORD, numerics_rows, write_csv
from typer.testing import CliRunner

from vitalstream.commands.backtest import backtest_command

RUNNER = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("backtest")(backtest_command)

    @app.callback()
    def _root() -> None:
        """Test app around backtest_command."""

    return app


def _run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = RUNNER.invoke(_app(), ["backtest", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_backtest_writes_alerts_scores_and_a_summary(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "subject,time,metric,value\n"
        "p1,2026-11-25T08:00:00Z,spo2,95\n"
        "p1,2026-11-25T08:01:00Z,spo2,89\n"
        "p1,2026-11-25T08:02:00Z,spo2,88\n"
        "p1,2026-11-25T08:02:00Z,heart_rate,\n"
        "p1,2026-11-25T08:03:00Z,respiratory_rate,NaN\n"
        "p2,1700000000,glucose,2.8\n",
    )
    code, summary = _run(
        "--input", str(path), "--pack", "core", "--out", str(tmp_path / "o"), "--json"
    )
    assert code == 0
    assert summary["alerts"] == 2
    assert summary["alerts_by_rule"] == {"glucose_level2_hypo": 1, "spo2_low": 1}
    assert summary["no_value"] == 2
    assert summary["alerts_per_subject_day"]["p1"] == {"2026-11-25": 1}
    lines = (tmp_path / "o" / "alerts.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"subject", "time", "rule", "severity", "message"}
    assert first["rule"] == "spo2_low" and first["time"] == "2026-11-25T08:02:00Z"
    scores = list(csv.DictReader((tmp_path / "o" / "scores.csv").open()))
    assert scores[0].keys() == {"subject", "time", "score", "value"}
    assert {row["score"] for row in scores} == {"news2"}  # SpO2 feeds only NEWS2


def test_backtest_seconds_stay_seconds_and_stale_fires_between_readings(tmp_path: Path) -> None:
    rows = ["subject,time,metric,value"]
    rows += [f"w1,{t},heart_rate,70" for t in (0, 600, 1200)]
    rows += ["w1,9000,heart_rate,72"]  # 2 h 10 min of silence in between
    path = _csv(tmp_path, "\n".join(rows) + "\n")
    code, summary = _run(
        "--input", str(path), "--pack", "elderly", "--out", str(tmp_path / "o"), "--json"
    )
    assert code == 0
    alerts = [json.loads(x) for x in (tmp_path / "o" / "alerts.jsonl").read_text().splitlines()]
    assert [(a["rule"], round(a["time"])) for a in alerts] == [("wearable_silent", 1200 + 3600)]
    assert summary["alerts_by_rule"] == {"wearable_silent": 1}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("subject,when,metric,value\np,0,spo2,90\n", "malformed"),
        ("subject,time,metric,value\np,yesterday,spo2,90\n", "malformed"),
        ("subject,time,metric,value\np,0,spo2,ninety\n", "malformed"),
        ("subject,time,metric,value\np,0,oxygen,90\n", "unknown_metric"),
        ("subject,time,metric,value\np q,0,spo2,90\n", "malformed"),
        ("", "malformed"),
    ],
)
def test_bad_csv_exits_3_with_the_error_object(tmp_path: Path, text: str, kind: str) -> None:
    code, body = _run("--input", str(_csv(tmp_path, text)), "--out", str(tmp_path / "o"), "--json")
    assert code == 3
    assert body["error"]["kind"] == kind
    assert body["error"]["detail"]


def test_unknown_pack_is_a_usage_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "subject,time,metric,value\np,0,spo2,90\n")
    result = RUNNER.invoke(
        _app(), ["backtest", "--input", str(path), "--pack", "nope", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2


def test_overrides_file_sets_per_patient_targets(tmp_path: Path) -> None:
    path = _csv(tmp_path, "subject,time,metric,value\nc1,0,spo2,89\nc1,60,spo2,89\n")
    overrides = tmp_path / "o.json"
    overrides.write_text(json.dumps({"c1": {"parameters": {"spo2_target_low": 88}}}))
    code, summary = _run(
        "--input",
        str(path),
        "--pack",
        "copd",
        "--out",
        str(tmp_path / "o"),
        "--json",
        "--overrides",
        str(overrides),
    )
    assert code == 0 and summary["alerts"] == 0
    code, summary = _run(
        "--input", str(path), "--pack", "copd", "--out", str(tmp_path / "o"), "--json"
    )
    assert summary["alerts_by_rule"] == {"spo2_below_target": 1}


# --- MIMIC-II numerics: the negative control ---------------------------------------------------

needs_mimic = pytest.mark.skipif(
    not (MIMIC_DIR / f"{RECORD}.hea").exists(), reason="MIMIC-II numerics record not present"
)


@pytest.fixture(scope="module")
def mimic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("wfdb")
    if not (MIMIC_DIR / f"{RECORD}.hea").exists():
        pytest.skip("MIMIC-II numerics record not present")
    path = tmp_path_factory.mktemp("mimic") / "s00001.csv"
    with path.open("w", newline="") as out:
        write_csv(numerics_rows(MIMIC_DIR / RECORD), out)
    return path


@needs_mimic
def test_mimic_converter_turns_zeros_and_nan_into_no_value(mimic_csv: Path) -> None:
    """SOURCE.md: 0 = sensor off (HR, SpO2), NaN = no NIBP cycle: both become empty values."""
    rows = list(csv.DictReader(mimic_csv.open()))
    assert len(rows) == 1936 * 7
    assert not any(row["value"] in ("0", "nan") for row in rows)
    empty_spo2 = sum(1 for row in rows if row["metric"] == "spo2" and row["value"] == "")
    assert empty_spo2 == 1936 - 1573  # SOURCE.md: SpO2 non-zero in 1573 of 1936 minutes
    nbp = sum(1 for row in rows if row["metric"] == "bp_systolic" and row["value"])
    assert nbp == 152


@needs_mimic
@pytest.mark.parametrize(
    "packs", [["core"], ["elderly"], ["emergency"], ["core,elderly,emergency"]]
)
def test_replaying_mimic_s00001_raises_no_alarm(
    mimic_csv: Path, tmp_path: Path, packs: list[str]
) -> None:
    """A stable ICU patient (SOURCE.md): no alarm from the zeros, and none at all."""
    args = ["--input", str(mimic_csv), "--out", str(tmp_path), "--json"]
    for pack in packs:
        args += ["--pack", pack]
    code, summary = _run(*args)
    assert code == 0
    assert summary["no_value"] >= 1936 - 1573  # the zeros were read as "no value"
    assert summary["alerts"] == 0, summary["alerts_by_rule"]
    assert (tmp_path / "alerts.jsonl").read_text() == ""


@needs_mimic
def test_zeros_taken_as_values_would_not_alarm_either(mimic_csv: Path, tmp_path: Path) -> None:
    """Belt and braces: a raw 0 that slipped through is implausible (catalogue) and skipped."""
    text = (
        mimic_csv.read_text()
        .replace(",spo2,\n", ",spo2,0\n")
        .replace(",heart_rate,\n", ",heart_rate,0\n")
    )
    raw = tmp_path / "zeros.csv"
    raw.write_text(text)
    code, summary = _run(
        "--input",
        str(raw),
        "--pack",
        "core,elderly,emergency",
        "--out",
        str(tmp_path / "o"),
        "--json",
    )
    assert code == 0
    assert summary["implausible"] >= 1936 - 1573
    assert summary["alerts"] == 0


@needs_mimic
def test_mimic_scores_are_written_and_stable(mimic_csv: Path, tmp_path: Path) -> None:
    """NEWS2 over the stable stretches stays low (partial: no temperature, GCS, oxygen)."""
    code, _ = _run(
        "--input", str(mimic_csv), "--pack", "emergency", "--out", str(tmp_path), "--json"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text())))
    news2 = [float(r["value"]) for r in rows if r["score"] == "news2"]
    assert len(news2) > 1000
    assert sorted(news2)[len(news2) // 2] <= 2  # median
    assert max(news2) <= 6
