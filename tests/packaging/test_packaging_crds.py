"""The CRDs ship in the package (for `demo` from a wheel) as byte-identical copies of crds/."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from fastly_secret_store_operator import crds

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ROOT / "operator" / "fastly_secret_store_operator" / "crds"


def _crd_files(folder: Path) -> dict[str, Path]:
    return {
        path.name: path
        for path in sorted(folder.glob("*.yaml"))
        if any(doc and doc.get("kind") == "CustomResourceDefinition" for doc in yaml.safe_load_all(path.read_text()))
    }


def test_the_package_holds_a_copy_of_every_crd_and_nothing_else() -> None:
    source = _crd_files(ROOT / "crds")
    assert source, "crds/ holds no CustomResourceDefinition"
    assert sorted(source) == crds.names(), (
        f"the packaged CRDs differ from crds/: run `cp crds/*.*.yaml {PACKAGED.relative_to(ROOT)}/` "
        "(and remove the ones crds/ no longer has)"
    )


def test_each_packaged_crd_is_a_byte_identical_regular_file() -> None:
    for name, path in _crd_files(ROOT / "crds").items():
        copy = PACKAGED / name
        assert not path.is_symlink(), f"crds/{name} is a symlink (Flux drops them): make it a file"
        assert not copy.is_symlink(), f"{copy.relative_to(ROOT)} is a symlink (Flux drops them): copy the file"
        assert copy.read_bytes() == path.read_bytes(), f"{copy.relative_to(ROOT)} differs from crds/{name}: copy it"


def test_the_packaged_crds_are_package_data() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.yaml" in package_data["fastly_secret_store_operator.crds"]


def test_paths_gives_readable_files_of_the_served_resource() -> None:
    with crds.paths() as paths:
        kinds = [yaml.safe_load(path.read_text())["spec"]["names"]["kind"] for path in paths]
    assert "FastlySecretStore" in kinds
