"""The seam to ARM: the only module that imports ``azure.*`` (lazily, so the CLI starts fast).

Everything crosses it as plain REST JSON (``dict``), the shape the reconciler diffs. SDK and
credential errors become ``AzureError`` here, with the operation and resource named.

Endpoint selection comes from the environment (sovereign clouds, tests, the lab):
``NESTNET_ARM_ENDPOINT`` (https only), ``NESTNET_ARM_CA_BUNDLE`` (TLS is verified against it),
``NESTNET_ARM_TOKEN`` (a static bearer token, for emulators), ``AZURE_SUBSCRIPTION_ID``.
"""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import AzureError

PUBLIC_ENDPOINT = "https://management.azure.com"
NO_CREDENTIAL = (
    "no usable Azure credential (run `az login`, use a managed identity, or set AZURE_TENANT_ID, "
    "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)"
)

Progress = Callable[[str], AbstractContextManager[Any]]


class EtagMismatch(AzureError):
    """A write carried ``If-Match`` and the resource had changed since it was read (HTTP 412)."""


@dataclass(frozen=True)
class ArmSettings:
    endpoint: str
    subscription_id: str
    resource_group: str
    ca_bundle: str | None = None
    token: str | None = None

    @classmethod
    def from_env(
        cls, resource_group: str, subscription_id: str | None, env: Mapping[str, str] = os.environ
    ) -> "ArmSettings":
        endpoint = env.get("NESTNET_ARM_ENDPOINT", PUBLIC_ENDPOINT).rstrip("/")
        if not endpoint.startswith("https://"):
            raise AzureError(f"NESTNET_ARM_ENDPOINT {endpoint!r}: must be an https:// URL (TLS is never turned off)")
        sub = subscription_id or env.get("AZURE_SUBSCRIPTION_ID")
        if not sub:
            raise AzureError("no subscription: set azure.subscription_id in the spec or AZURE_SUBSCRIPTION_ID")
        ca = env.get("NESTNET_ARM_CA_BUNDLE") or None
        if ca and not Path(ca).is_file():
            raise AzureError(f"NESTNET_ARM_CA_BUNDLE {ca!r}: no such file")
        return cls(endpoint, sub, resource_group, ca, env.get("NESTNET_ARM_TOKEN") or None)


class _StaticToken:
    """A credential that always hands out one bearer token (emulators only)."""

    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


class ArmClient:
    """list/get/put on the few Microsoft.Network resources nestnet touches, as REST JSON."""

    def __init__(self, settings: ArmSettings, progress: Progress | None = None):
        self.settings = settings
        self.rg = settings.resource_group
        self._progress: Progress = progress or (lambda _msg: nullcontext())
        self._client: Any = None

    # The SDK is imported on first use only.
    @property
    def sdk(self) -> Any:
        if self._client is None:
            from azure.mgmt.network import NetworkManagementClient

            s = self.settings
            if s.token:
                credential: Any = _StaticToken(s.token)
            else:
                import logging

                from azure.identity import DefaultAzureCredential

                # The SDK logs every failed credential on stderr; nestnet reports one line instead.
                logging.getLogger("azure").addHandler(logging.NullHandler())
                credential = DefaultAzureCredential()
            self._client = NetworkManagementClient(
                credential,
                s.subscription_id,
                base_url=s.endpoint,
                credential_scopes=[f"{_scope_root(s.endpoint)}/.default"],
                connection_verify=s.ca_bundle or True,
            )
        return self._client

    def table_id(self, name: str) -> str:
        s = self.settings
        return f"/subscriptions/{s.subscription_id}/resourceGroups/{s.resource_group}/providers/Microsoft.Network/routeTables/{name}"

    # -- reads: a fixed number of calls whatever the fabric's size -------------------------------
    def get_route_table(self, name: str) -> dict[str, Any] | None:
        with _converted(f"GET route table {name!r}", missing_ok=True) as box:
            box.value = self.sdk.route_tables.get(self.rg, name).as_dict()
        return box.value

    def get_vnet(self, name: str) -> dict[str, Any]:
        with _converted(f"GET virtual network {name!r} in resource group {self.rg!r}") as box:
            box.value = self.sdk.virtual_networks.get(self.rg, name).as_dict()
        return box.value

    def list_nics(self) -> list[dict[str, Any]]:
        with _converted(f"list network interfaces in resource group {self.rg!r}") as box:
            box.value = [n.as_dict() for n in self.sdk.network_interfaces.list(self.rg)]
        return box.value

    def get_nic(self, name: str) -> dict[str, Any]:
        with _converted(f"GET network interface {name!r} in resource group {self.rg!r}") as box:
            box.value = self.sdk.network_interfaces.get(self.rg, name).as_dict()
        return box.value

    def effective_routes(self, nic: str) -> list[dict[str, Any]]:
        with _converted(f"effective routes of NIC {nic!r}") as box, self._progress(f"effective routes of {nic}"):
            poller = self.sdk.network_interfaces.begin_get_effective_route_table(self.rg, nic)
            box.value = list(poller.result().as_dict().get("value", []))
        return box.value

    # -- writes: long-running, guarded by the etag that was read --------------------------------
    def put_route_table(self, name: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        n = len(body.get("properties", {}).get("routes", []))
        with _converted(f"PUT route table {name!r}") as box, self._progress(f"PUT route table {name} ({n} routes)"):
            poller = self.sdk.route_tables.begin_create_or_update(self.rg, name, body, headers=headers)
            box.value = poller.result().as_dict()
        return box.value

    def put_subnet(self, vnet: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        # No If-Match: a subnet carries its VNet's etag, so guarding it would make the second of
        # two associations in one run fail (see docs/decisions/0003-azure-one-put.md).
        headers: dict[str, str] = {}
        with _converted(f"PUT subnet {name!r} of {vnet!r}") as box, self._progress(f"PUT subnet {vnet}/{name}"):
            poller = self.sdk.subnets.begin_create_or_update(self.rg, vnet, name, body, headers=headers)
            box.value = poller.result().as_dict()
        return box.value

    def put_nic(self, name: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {}
        n = len(body.get("properties", {}).get("ipConfigurations") or [])
        with _converted(f"PUT network interface {name!r}") as box, self._progress(f"PUT NIC {name} ({n} ip configurations)"):
            poller = self.sdk.network_interfaces.begin_create_or_update(self.rg, name, body, headers=headers)
            box.value = poller.result().as_dict()
        return box.value


def _scope_root(endpoint: str) -> str:
    # Public and sovereign ARM endpoints take "<endpoint>/.default" as their token scope.
    return endpoint.rstrip("/")


class _Box:
    value: Any = None


class _converted:
    """Run an SDK call; turn its failure into one ``AzureError`` line naming the operation."""

    def __init__(self, what: str, missing_ok: bool = False):
        self.what, self.missing_ok, self.box = what, missing_ok, _Box()

    def __enter__(self) -> _Box:
        return self.box

    def __exit__(self, etype: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            return False
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        if isinstance(exc, HttpResponseError):
            status = getattr(exc, "status_code", None)
            if status == 404 and self.missing_ok:
                self.box.value = None
                return True
            code, msg = _arm_error(exc)
            if status == 412:
                raise EtagMismatch(f"{self.what}: changed since it was read (412 {code})") from exc
            if isinstance(exc, ClientAuthenticationError) and status is None:
                raise AzureError(f"{self.what}: {NO_CREDENTIAL}") from exc
            raise AzureError(f"{self.what}: HTTP {status} {code}: {' '.join(str(msg).split())}") from exc
        if isinstance(exc, ServiceRequestError):
            raise AzureError(f"{self.what}: cannot reach ARM: {_first_line(str(exc))}") from exc
        try:
            from azure.identity import CredentialUnavailableError
        except ImportError:  # pragma: no cover - azure-identity is a dependency
            CredentialUnavailableError = ()  # type: ignore[assignment]
        if isinstance(exc, CredentialUnavailableError):
            raise AzureError(f"{self.what}: {NO_CREDENTIAL}") from exc
        from azure.core.exceptions import AzureError as SdkError

        if isinstance(exc, SdkError):
            raise AzureError(f"{self.what}: {_first_line(str(exc))}") from exc
        return False


def _arm_error(exc: Any) -> tuple[str, str]:
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None) or ""
    msg = getattr(err, "message", None) or ""
    if not code:
        try:
            body = exc.response.json()
            code = body.get("error", {}).get("code", "") or ""
            msg = body.get("error", {}).get("message", "") or ""
        except Exception:  # a non-JSON body: fall back to the exception text
            msg = _first_line(str(exc))
    return code, msg


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
