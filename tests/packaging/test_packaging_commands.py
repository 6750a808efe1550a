"""The README's two commands are one line each, and CI runs the test one as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.DOTALL | re.MULTILINE)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def _commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", _section("The two commands"), re.DOTALL)
    assert len(blocks) == 2, "'The two commands' shows two sh blocks: run it, test it"
    for block in blocks:
        assert len(block.strip().splitlines()) == 1, f"each of the two commands is one line: {block!r}"
    return [block.strip() for block in blocks]


def test_each_command_makes_its_own_environment_from_python_alone() -> None:
    for command in _commands():
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e "), command


def test_the_run_command_runs_the_operator_on_the_emulators() -> None:
    run, _ = _commands()
    assert "'.[demo]'" in run
    assert run.endswith(".venv/bin/fastly-secret-store-operator demo")


def test_ci_runs_the_readme_test_command_as_written() -> None:
    _, test = _commands()
    assert "'.[test]'" in test
    assert test.endswith(".venv/bin/python -m pytest")
    assert test in CI.splitlines(), ".ci/run must run the README's test command line exactly as written"


def test_ci_then_runs_the_lowest_bounds_tier() -> None:
    lines = CI.splitlines()
    _, test = _commands()
    tier = [i for i, line in enumerate(lines) if line.startswith("bash .ci/lowest-bounds")]
    assert tier, ".ci/run runs .ci/lowest-bounds"
    assert tier[0] > lines.index(test), ".ci/run runs .ci/lowest-bounds after the main suite"


def test_the_quickstart_uses_the_run_command() -> None:
    run, _ = _commands()
    assert run in _section("Quickstart")
