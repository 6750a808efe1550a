"""A Kubernetes operator, on Kopf, that makes Fastly secret stores declarative."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastly-secret-store-operator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0.0.0"
