"""Every declared lower bound is the version the lowest-bounds tier installs, and every import is declared.

constraints/lowest.txt pins the lowest version of each build, runtime and demo dependency; .ci/lowest-bounds
builds the wheel with that setuptools, installs exactly those versions into a fresh virtual environment and runs
the integration tests there. These tests keep the
pins, pyproject's lower bounds and what the code imports in step.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "fastly_secret_store_operator"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
BUILD = [Requirement(line) for line in PYPROJECT["build-system"]["requires"]]
RUNTIME = [Requirement(line) for line in PROJECT["dependencies"]]
DEMO = [Requirement(line) for line in PROJECT["optional-dependencies"]["demo"]]
TEST = [Requirement(line) for line in PROJECT["optional-dependencies"]["test"]]


def _lower_bound(requirement: Requirement) -> Version:
    bounds = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    assert len(bounds) == 1, f"{requirement}: declare exactly one lower bound (>=), the one the tier tests"
    return bounds[0]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "constraints" / "lowest.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        assert version, f"constraints/lowest.txt: {raw!r} is not NAME==VERSION"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_constraints_pin_exactly_the_build_runtime_and_demo_dependencies() -> None:
    declared = {canonicalize_name(r.name) for r in BUILD + RUNTIME + DEMO}
    pinned = set(_pins())
    assert not declared - pinned, f"constraints/lowest.txt must pin these too: {sorted(declared - pinned)}"
    assert not pinned - declared, f"constraints/lowest.txt pins what pyproject.toml does not: {pinned - declared}"


def test_each_pin_is_the_declared_lower_bound() -> None:
    pins = _pins()
    wrong = {
        r.name: f"pyproject says >={_lower_bound(r)}, constraints/lowest.txt pins {pins[canonicalize_name(r.name)]}"
        for r in BUILD + RUNTIME + DEMO
        if pins.get(canonicalize_name(r.name)) != _lower_bound(r)
    }
    assert not wrong, wrong


def test_the_test_extra_holds_the_demo_extra() -> None:
    test = {canonicalize_name(r.name): str(r.specifier) for r in TEST}
    missing = {r.name: str(r.specifier) for r in DEMO if test.get(canonicalize_name(r.name)) != str(r.specifier)}
    assert not missing, f"the test extra must repeat the demo extra's requirements as they are: {missing}"


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__", "fastly_secret_store_operator"}


def _distributions(module: str) -> set[str]:
    found = importlib.metadata.packages_distributions().get(module)
    assert found, f"no installed distribution provides the imported module {module!r}"
    return {canonicalize_name(name) for name in found}


def test_every_import_is_declared() -> None:
    runtime = {canonicalize_name(r.name) for r in RUNTIME}
    demo = runtime | {canonicalize_name(r.name) for r in DEMO}
    undeclared: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        # The emulators run under `demo` (and the tests); everything else runs in the operator's image.
        allowed = demo if "emulators" in path.relative_to(PACKAGE).parts else runtime
        for module in _imported_modules(path):
            if not _distributions(module) & allowed:
                undeclared.setdefault(str(path.relative_to(ROOT)), []).append(module)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
