"""Where the API server is and how to prove who we are: from the `kubernetes` package's public config loaders
(in-cluster service account, or a kubeconfig and context, exec plugins and token refresh included), or from a
`kopf.ConnectionInfo`. The same credentials serve the operator's own calls and Kopf's (through a login handler),
so `--kubeconfig` and `--context` apply to both."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import kopf
import kubernetes

from fastly_secret_store_operator.kube.errors import StartupError


class CredentialsError(StartupError):
    """No usable Kubernetes configuration; the message says which and never quotes the file."""


@dataclass(frozen=True)
class Credentials:
    server: str
    #: The Authorization header value, fetched per request so that refreshed tokens are used.
    authorization: Callable[[], str | None] = field(default=lambda: None, repr=False)
    ca_path: str | None = None
    insecure: bool = False
    cert_path: str | None = None
    key_path: str | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    default_namespace: str | None = None
    #: Where they came from, for messages: "in-cluster service account", "kubeconfig ~/.kube/config", …
    source: str = "connection info"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def connection_info(self) -> kopf.ConnectionInfo:
        """For a `@kopf.on.login` handler. Called again by Kopf after a 401: the token is fetched afresh."""
        scheme, token = _split_authorization(self.authorization())
        return kopf.ConnectionInfo(
            server=self.server,
            ca_path=self.ca_path,
            insecure=self.insecure or None,
            scheme=scheme,
            token=token,
            certificate_path=self.cert_path,
            private_key_path=self.key_path,
            default_namespace=self.default_namespace,
            proxy_url=self.proxy,
        )


def _split_authorization(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    scheme, _, token = header.partition(" ")
    return (scheme.capitalize(), token) if token else ("Bearer", scheme)


def from_configuration(configuration: kubernetes.client.Configuration, source: str) -> Credentials:
    """Credentials from a `kubernetes.client.Configuration` the package's loaders filled in."""

    def authorization() -> str | None:
        # Runs the configuration's refresh hook (expired exec-plugin or in-cluster tokens); "BearerToken" since
        # kubernetes 31, "authorization" before.
        token: str | None = configuration.get_api_key_with_prefix(
            "BearerToken"
        ) or configuration.get_api_key_with_prefix("authorization")
        if token:
            return token
        if configuration.username or configuration.password:
            basic: str | None = configuration.get_basic_auth_token()
            return basic
        return None

    return Credentials(
        server=str(configuration.host).rstrip("/"),
        authorization=authorization,
        ca_path=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        cert_path=configuration.cert_file or None,
        key_path=configuration.key_file or None,
        tls_server_name=getattr(configuration, "tls_server_name", None) or None,  # public, from kubernetes 25
        proxy=configuration.proxy or None,
        source=source,
    )


def from_connection_info(info: kopf.ConnectionInfo) -> Credentials:
    """Credentials from what a Kopf login handler returns (the demo and tests use this)."""
    files = _PemFiles()
    header = None
    if info.token:
        header = f"{info.scheme or 'Bearer'} {info.token}"
    elif info.username is not None:
        import base64

        pair = f"{info.username}:{info.password or ''}".encode()
        header = "Basic " + base64.b64encode(pair).decode()
    return Credentials(
        server=info.server.rstrip("/"),
        authorization=lambda: header,
        ca_path=_path(info.ca_path) or files.write("ca", info.ca_data),
        insecure=bool(info.insecure),
        cert_path=_path(info.certificate_path) or files.write("cert", info.certificate_data),
        key_path=_path(info.private_key_path) or files.write("key", info.private_key_data),
        proxy=info.proxy_url,
        default_namespace=info.default_namespace,
    )


def _path(value: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> str | None:
    return os.fsdecode(value) if value else None


class _PemFiles:
    """Inline PEM data written to private files: the ssl module and Kopf read certificates from paths."""

    def __init__(self) -> None:
        self._directory: str | None = None

    def write(self, name: str, data: str | bytes | None) -> str | None:
        if not data:
            return None
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="fsso-kube-")  # mode 0700
        path = Path(self._directory) / f"{name}.pem"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(0o600)
        return str(path)


def load(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """The in-cluster service account when running in a pod and no kubeconfig or context was asked for, else
    the kubeconfig (`kubeconfig`, else $KUBECONFIG, else ~/.kube/config) and its `context` (else the current
    one). Raises CredentialsError saying what is missing."""
    configuration = kubernetes.client.Configuration()
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            pass  # a pod without a mounted token: try the kubeconfig
        else:
            return from_configuration(configuration, "in-cluster service account")
    where = f"kubeconfig {kubeconfig}" if kubeconfig else "kubeconfig"
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        raise CredentialsError(f"no kubeconfig file at {kubeconfig}")
    if context is not None:
        _check_context(kubeconfig, context, where)
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    except kubernetes.config.ConfigException as error:
        if kubeconfig is None and "No configuration found" in str(error):
            raise CredentialsError(
                "no Kubernetes configuration: not in a pod, and no kubeconfig ($KUBECONFIG, ~/.kube/config or "
                "--kubeconfig)"
            ) from None
        raise CredentialsError(f"cannot use the {where}: {_first_line(error)}") from None
    except Exception as error:  # an unreadable file, a broken YAML, a failing exec plugin: never quote the file
        raise CredentialsError(f"cannot read the {where} ({type(error).__name__})") from None
    return from_configuration(configuration, where + (f" context {context}" if context else ""))


def _check_context(kubeconfig: str | None, context: str, where: str) -> None:
    try:
        contexts, _ = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:  # the loader below reports what is wrong with the file
        return
    names = sorted(str(item.get("name")) for item in contexts or ())
    if context not in names:
        raise CredentialsError(f"no context {context!r} in the {where} (it has: {', '.join(names) or 'none'})")


def _first_line(error: Exception) -> str:
    # The loader's own messages name keys and files, not their values; bounded all the same.
    return (str(error).splitlines() or [type(error).__name__])[0][:200]
