"""The project's CustomResourceDefinitions, shipped in the wheel as package data.

The YAML files here are byte-identical copies of the repository's crds/ (tests/packaging/test_packaged_crds.py
keeps them so; copy, never symlink: Flux drops symlinks from Git artifacts). They let `demo` run from an
installed wheel, where no crds/ directory exists.
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Iterator
from pathlib import Path


def names() -> list[str]:
    """The file names of the packaged CRDs, sorted."""
    folder = importlib.resources.files(__name__)
    return sorted(item.name for item in folder.iterdir() if item.name.endswith(".yaml"))


@contextlib.contextmanager
def paths() -> Iterator[list[Path]]:
    """Real filesystem paths of the packaged CRDs, valid inside the `with` (extracted if the package is zipped)."""
    folder = importlib.resources.files(__name__)
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(importlib.resources.as_file(folder / name)) for name in names()]
