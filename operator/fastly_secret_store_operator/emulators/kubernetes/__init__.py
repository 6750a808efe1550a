"""A Kubernetes API emulator on kmock: the operator runs against it (Kopf, real HTTP) with no cluster.

    async with KubernetesEmulator() as emulator:            # or: with emulator.run_in_thread() as url:
        emulator.store.create("secrets", {"metadata": {"name": "token", "namespace": "default"}, ...})
        ...                                                  # Kopf logs in with emulator.connection_info()

See `KubernetesEmulator` for how to point Kopf at it, and `ObjectStore` for direct access to objects."""

from fastly_secret_store_operator.emulators.kubernetes.server import ApiPath, KubernetesEmulator, project_crds
from fastly_secret_store_operator.emulators.kubernetes.store import (
    CORE_RESOURCES,
    EVENTS,
    LEASES,
    NAMESPACES,
    SECRETS,
    ApiError,
    ObjectStore,
    ResourceType,
    Selectors,
    load_crd_resources,
)

__all__ = [
    "CORE_RESOURCES",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "SECRETS",
    "ApiError",
    "ApiPath",
    "KubernetesEmulator",
    "ObjectStore",
    "ResourceType",
    "Selectors",
    "load_crd_resources",
    "project_crds",
]
