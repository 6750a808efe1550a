"""Run by .ci/lowest-bounds, where the project is installed from its wheel with exactly constraints/lowest.txt.

In a source checkout (the package imported from operator/) these skip: the tier runs them.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

import fastly_secret_store_operator

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = Path(fastly_secret_store_operator.__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    INSTALLED.is_relative_to(ROOT),
    reason="the package is the source tree here; .ci/lowest-bounds runs these against the installed wheel",
)


def test_the_lowest_versions_are_what_is_installed() -> None:
    wrong = {}
    for raw in (ROOT / "constraints" / "lowest.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            installed = importlib.metadata.version(name)
            if Version(installed) != Version(pinned):
                wrong[canonicalize_name(name)] = f"installed {installed}, pinned {pinned}"
    assert not wrong, wrong


def test_demo_from_the_installed_wheel_exits_zero(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "fastly-secret-store-operator"
    result = subprocess.run(
        [str(script), "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"reason": "Synced"' in result.stdout
    assert "The object is gone and the Fastly store is deleted." in result.stdout


def test_the_wheel_carries_the_crds() -> None:
    for source in sorted((ROOT / "crds").glob("*.*.yaml")):
        assert (INSTALLED / "crds" / source.name).read_bytes() == source.read_bytes()
