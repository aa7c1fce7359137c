"""``vitalstream enrol`` from the outside: contract output, exit 3, and no clear ID anywhere.

Every ID here is SYNTHETIC (region 110101, a made-up birth date and sequence, check character
computed by ISO 7064 MOD 11-2 in this file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ingest_service.identity import SUBJECT_PATTERN
from vitalstream.commands.enrol import SYNTHETIC_EXAMPLE_ID, enrol_command


def _check(body: str) -> str:
    total = 0
    for digit in body:
        total = ((total + int(digit)) * 2) % 11
    value = (12 - total) % 11
    return "X" if value == 10 else str(value)


def synthetic_id(born: str = "19850612", sequence: str = "471") -> str:
    body = "110101" + born + sequence
    return body + _check(body)


VALID = synthetic_id()
WRONG_CHECK = VALID[:-1] + ("1" if VALID[-1] != "1" else "2")
BAD_DATE = synthetic_id(born="19850230")  # valid check character, 30 February
FUTURE = synthetic_id(born="20991231")

#: Runs the command as a program would, with logging at DEBUG on stderr, so the test sees
#: everything the process could print or log. (Independent of how cli.py wires it.)
_SHIM = """
import sys, typer
from vitalstream.output import configure_logging
from vitalstream.commands.enrol import enrol_command
configure_logging("DEBUG")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("enrol")(enrol_command)
@app.callback()
def _root() -> None:
    "root"
app()
"""


def _run(args: list[str], key_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VITALSTREAM_ENROLMENT_KEY_DIR": str(key_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", _SHIM, "enrol", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _assert_absent(number: str, *texts: str) -> None:
    for text in texts:
        assert number not in text
        assert number[:17] not in text
        assert number.lower() not in text


def test_the_synthetic_help_example_is_valid() -> None:
    assert SYNTHETIC_EXAMPLE_ID.startswith("110101")
    assert SYNTHETIC_EXAMPLE_ID[-1] == _check(SYNTHETIC_EXAMPLE_ID[:17])


def test_enrol_subprocess_never_prints_the_id(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = _run(["--national-id", VALID, "--json"], keys)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert set(out) == {"subject", "algorithm", "key_version"}
    assert out["algorithm"] == "hmac-sm3"
    assert out["key_version"] == 1
    assert SUBJECT_PATTERN.fullmatch(out["subject"])
    _assert_absent(VALID, first.stdout, first.stderr)

    again = _run(["--national-id", f" {VALID.lower()} ", "--json"], keys)
    assert json.loads(again.stdout) == out  # same ID, same key: same subject

    human = _run(["--national-id", VALID], keys)
    assert human.returncode == 0
    assert out["subject"] in human.stdout
    _assert_absent(VALID, human.stdout, human.stderr)

    sha = _run(["--national-id", VALID, "--json", "--algorithm", "hmac-sha256"], keys)
    assert json.loads(sha.stdout)["algorithm"] == "hmac-sha256"
    assert json.loads(sha.stdout)["subject"] != out["subject"]

    rotated = _run(["--national-id", VALID, "--json", "--rotate-key"], keys)
    assert json.loads(rotated.stdout)["key_version"] == 2
    assert json.loads(rotated.stdout)["subject"] != out["subject"]
    old = _run(["--national-id", VALID, "--json", "--key-version", "1"], keys)
    assert json.loads(old.stdout) == out
    _assert_absent(VALID, rotated.stdout, rotated.stderr, old.stdout, old.stderr)

    # The key directory holds only the key files, and they are random, not the ID.
    assert sorted(p.name for p in keys.iterdir()) == ["key-v1.bin", "key-v2.bin"]
    for path in keys.iterdir():
        _assert_absent(VALID, path.read_bytes().decode("latin-1"))


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (WRONG_CHECK, "check character"),
        (BAD_DATE, "birth date"),
        (FUTURE, "future"),
        (VALID[:-1], "characters"),
        (VALID + "7", "characters"),
    ],
)
def test_enrol_rejects_with_exit_3_without_echoing(
    number: str, reason: str, tmp_path: Path
) -> None:
    result = _run(["--national-id", number, "--json"], tmp_path / "keys")
    assert result.returncode == 3
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "invalid_id"
    assert reason in error["detail"]
    _assert_absent(number, result.stdout, result.stderr)
    assert not (tmp_path / "keys").exists()  # a rejected ID does not even create a key


def test_enrol_usage_errors(tmp_path: Path) -> None:
    bad_algorithm = _run(["--national-id", VALID, "--algorithm", "md5"], tmp_path)
    assert bad_algorithm.returncode == 2
    _assert_absent(VALID, bad_algorithm.stdout, bad_algorithm.stderr)
    unknown_version = _run(["--national-id", VALID, "--json", "--key-version", "5"], tmp_path)
    assert unknown_version.returncode == 3
    assert json.loads(unknown_version.stdout)["error"]["kind"] == "unknown_key_version"
    _assert_absent(VALID, unknown_version.stdout, unknown_version.stderr)


def test_enrol_in_process_and_help(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("enrol")(enrol_command)

    @app.callback()
    def _root() -> None:
        """Test root."""

    runner = CliRunner()
    result = runner.invoke(
        app, ["enrol", "--national-id", VALID, "--json", "--key-dir", str(tmp_path)]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["key_version"] == 1
    help_text = runner.invoke(app, ["enrol", "--help"], env={"COLUMNS": "200"}).stdout
    assert "SYNTHETIC" in help_text
    assert SYNTHETIC_EXAMPLE_ID in help_text
    assert "invalid_id" in help_text
