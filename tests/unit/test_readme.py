"""The README's two set-up commands are the ones CI runs (and they stay exactly two)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None, "README must open with a bash block of set-up commands"
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands_demo_then_tests() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("vitalstream demo")
    assert "pytest" in commands[1]
    assert (ROOT / "README.md").read_text().index("```bash") < 40


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'README_TEST_COMMAND="{readme_commands()[1]}"' in ci


def test_readme_says_it_is_not_a_medical_device() -> None:
    assert "not a cleared medical device" in (ROOT / "README.md").read_text()
