"""The seam to ARM: the only module that imports ``azure.*`` (lazily, so the CLI starts fast).

Everything crosses it as ARM's own REST JSON (``dict``): responses are taken raw from the wire
(``cls=`` hook and ``raw_response_hook``) and bodies are sent as JSON bytes, so no SDK model
class ever shapes the data. That keeps nestnet independent of how a given azure-mgmt-network
release models or flattens resources (msrest-era releases' ``as_dict()`` returns flattened
snake_case keys; the TypeSpec-era ones return REST keys).

Errors become nestnet's own here, with the operation and resource named:

    EtagMismatch  (AzureError)    412: the resource changed since it was read; re-read, re-apply
    ArmBusy       (ServiceError)  429, 409 AnotherOperationInProgress, 408/5xx, an operation that
                                  ended Canceled[AndSupersededDueToAnotherOperation]: try again later
    ServiceError                  unreachable, no answer in time, 401/403, no credential, an answer
                                  nestnet cannot read, or still busy when the deadline passed
    AzureError                    ARM refused the request (400, 404, other 409s, ...)

Reads are retried here while ARM says "busy", until the client's deadline (``--timeout``);
writes are retried by the reconciler, which re-reads the resource first.

Endpoint, cloud and timeouts: ``ArmSettings.from_env`` (spec ``azure.cloud`` / ``arm_endpoint``
/ ``authority_host``; environment ``NESTNET_ARM_ENDPOINT``, ``NESTNET_ARM_CA_BUNDLE``,
``NESTNET_ARM_TOKEN`` (a static bearer token, for emulators), ``NESTNET_ARM_TIMEOUT``,
``AZURE_SUBSCRIPTION_ID``).
"""

from __future__ import annotations

import email.utils
import io
import json
import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ...errors import ServiceError, UsageError
from .errors import AzureError

# Azure's clouds: ARM endpoint and Microsoft Entra authority host (azure.identity.AzureAuthorityHosts).
CLOUDS: dict[str, tuple[str, str]] = {
    "public": ("https://management.azure.com", "login.microsoftonline.com"),
    "usgov": ("https://management.usgovcloudapi.net", "login.microsoftonline.us"),
    "china": ("https://management.chinacloudapi.cn", "login.chinacloudapi.cn"),
}
PUBLIC_ENDPOINT = CLOUDS["public"][0]
DEFAULT_TIMEOUT = 300.0  # seconds for a whole run, retries included
CONNECT_TIMEOUT = 10.0  # per request, capped by what is left of the deadline
READ_TIMEOUT = 60.0
NO_CREDENTIAL = (
    "no usable Azure credential (run `az login`, use a managed identity, or set AZURE_TENANT_ID, "
    "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)"
)
# ARM's "another write is in progress / was preferred": the request itself was fine, try again.
BUSY_CODES = frozenset(c.lower() for c in (
    "AnotherOperationInProgress",
    "RetryableErrorDueToAnotherOperation",
    "Canceled",
    "CanceledAndSupersededDueToAnotherOperation",
    "OperationPreempted",
))
CANCELED_STATES = frozenset(("canceled", "cancelled"))

Progress = Callable[[str], AbstractContextManager[Any]]


class EtagMismatch(AzureError):
    """A write carried ``If-Match`` and the resource had changed since it was read (HTTP 412)."""


class ArmBusy(ServiceError):
    """ARM answered "not now" (429, 409 AnotherOperationInProgress, 5xx, an LRO canceled by another one)."""

    def __init__(self, message: str, code: str, retry_after: float | None):
        super().__init__(message)
        self.code, self.retry_after = code, retry_after


@dataclass(frozen=True)
class ArmSettings:
    endpoint: str
    subscription_id: str
    resource_group: str
    ca_bundle: str | None = None
    token: str | None = None
    authority_host: str | None = None  # None: the public cloud's (or AZURE_AUTHORITY_HOST)
    timeout: float = DEFAULT_TIMEOUT  # the deadline for a whole run, retries included
    backoff: float = 1.0  # first wait when ARM is busy and says nothing (doubles, at most 30 s)

    @classmethod
    def from_env(
        cls,
        resource_group: str,
        subscription_id: str | None,
        env: Mapping[str, str] = os.environ,
        *,
        cloud: str | None = None,
        arm_endpoint: str | None = None,
        authority_host: str | None = None,
        timeout: float | None = None,
    ) -> "ArmSettings":
        """Settings from the spec's azure section and the environment; bad values: UsageError (exit 2)."""
        cloud = cloud or "public"
        if cloud not in CLOUDS:
            raise UsageError(f"azure.cloud {cloud!r}: expected one of {', '.join(CLOUDS)}")
        from ... import env as environment

        given = environment.get("NESTNET_ARM_ENDPOINT", env)
        endpoint = given or arm_endpoint or CLOUDS[cloud][0]
        source = "NESTNET_ARM_ENDPOINT" if given else "azure.arm_endpoint"
        endpoint = _check_endpoint(source, endpoint).rstrip("/")
        authority = authority_host or (None if cloud == "public" else CLOUDS[cloud][1])
        sub = subscription_id or environment.get("AZURE_SUBSCRIPTION_ID", env)
        if not sub:
            raise UsageError("no subscription: set azure.subscription_id in the spec or AZURE_SUBSCRIPTION_ID")
        ca = environment.get("NESTNET_ARM_CA_BUNDLE", env)
        if timeout is None:
            timeout = environment.get("NESTNET_ARM_TIMEOUT", env) or DEFAULT_TIMEOUT
        return cls(endpoint, sub, resource_group, ca, environment.get("NESTNET_ARM_TOKEN", env), authority, timeout)


def settings_for(plan: Any, env: Mapping[str, str] = os.environ, timeout: float | None = None) -> ArmSettings:
    """The plan's ARM settings: its resource group, subscription and cloud, plus the environment."""
    az = plan.azure
    return ArmSettings.from_env(
        az.resource_group, az.subscription_id, env,
        cloud=getattr(az, "cloud", None), arm_endpoint=getattr(az, "arm_endpoint", None),
        authority_host=getattr(az, "authority_host", None), timeout=timeout,
    )


def parse_timeout(name: str, value: str) -> float:
    from ...env import seconds

    return seconds(name, value)


def _check_endpoint(source: str, endpoint: str) -> str:
    from ...env import https_url

    return https_url(source, endpoint)


class _StaticToken:
    """A credential that always hands out one bearer token (emulators only)."""

    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def _raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    """``cls=`` hook: ARM's JSON as sent, not the SDK's model of it."""
    text = pipeline_response.http_response.text()
    return json.loads(text) if text else None


def _body(data: Mapping[str, Any]) -> io.BytesIO:
    # Sent as JSON bytes: the SDK passes IO bodies through untouched (no model, no key renaming).
    return io.BytesIO(json.dumps(data).encode())


class ArmClient:
    """list/get/put on the few Microsoft.Network resources nestnet touches, as REST JSON."""

    def __init__(self, settings: ArmSettings, progress: Progress | None = None):
        self.settings = settings
        self.rg = settings.resource_group
        self._progress: Progress = progress or (lambda _msg: nullcontext())
        self._client: Any = None
        self.deadline = time.monotonic() + settings.timeout
        self.busy_retries = 0  # answers "busy" that were waited out (reads here, writes in reconcile)

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
                kw = {"authority": s.authority_host} if s.authority_host else {}
                credential = DefaultAzureCredential(**kw)
            self._client = NetworkManagementClient(
                credential,
                s.subscription_id,
                base_url=s.endpoint,
                credential_scopes=[f"{s.endpoint}/.default"],
                connection_verify=s.ca_bundle or True,
                # azure-core retries 408/429/5xx (Retry-After honoured) a few times, LRO polls
                # included; nestnet's own loop handles the rest within its deadline (and re-reads
                # before retrying a write). A refused connection or a silent server is not retried.
                retry_total=3,
                retry_status=3,
                retry_connect=0,
                retry_read=0,
                retry_backoff_factor=s.backoff,
                retry_backoff_max=30,
                connection_timeout=min(CONNECT_TIMEOUT, s.timeout),
                read_timeout=min(READ_TIMEOUT, s.timeout),
            )
        return self._client

    def table_id(self, name: str) -> str:
        s = self.settings
        return f"/subscriptions/{s.subscription_id}/resourceGroups/{s.resource_group}/providers/Microsoft.Network/routeTables/{name}"

    # -- deadline ----------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _timeouts(self, write: bool = False) -> dict[str, float]:
        left = max(self.remaining(), 0.5)
        out = {"connection_timeout": min(CONNECT_TIMEOUT, left), "read_timeout": min(READ_TIMEOUT, left)}
        if not write:  # (the LRO poller takes ``timeout`` as its own polling interval argument)
            out["timeout"] = left  # bounds azure-core's own retries of this call
        return out

    def wait_busy(self, exc: ArmBusy, attempt: int) -> None:
        """Sleep as ARM asked (or back off) if the deadline allows; else raise the one-line ServiceError."""
        delay = exc.retry_after if exc.retry_after is not None else min(self.settings.backoff * 2 ** attempt, 30.0)
        if time.monotonic() + delay > self.deadline:
            waited = self.settings.timeout - self.remaining()
            raise ServiceError(
                f"{exc} - still busy after {waited:.0f}s, and waiting {delay:g}s more would pass the deadline of "
                f"{self.settings.timeout:g}s (--timeout / NESTNET_ARM_TIMEOUT); try again later"
            ) from exc
        self.busy_retries += 1
        time.sleep(delay)

    def _read(self, what: str, call: Callable[[dict[str, float]], Any], missing_ok: bool = False) -> Any:
        attempt = 0
        while True:  # ends: wait_busy raises once the deadline would pass
            try:
                with _converted(what, missing_ok) as box:
                    box.value = call(self._timeouts())
                return box.value
            except ArmBusy as exc:
                self.wait_busy(exc, attempt)
                attempt += 1

    def _lro(self, what: str, poller: Any) -> Any:
        # The SDK polls in a thread; give it what is left of the deadline.
        result = poller.result(timeout=max(self.remaining(), 0.5))
        if not poller.done():
            raise ServiceError(
                f"{what}: not finished after {self.settings.timeout:g}s (--timeout / NESTNET_ARM_TIMEOUT); "
                "ARM may still complete it - run diff again"
            )
        return result

    # -- reads: a fixed number of calls whatever the fabric's size -------------------------------
    def get_route_table(self, name: str) -> dict[str, Any] | None:
        return _checked("route table", self._read(
            f"GET route table {name!r}", lambda t: self.sdk.route_tables.get(self.rg, name, cls=_raw, **t),
            missing_ok=True), "routes", optional=True)

    def get_vnet(self, name: str) -> dict[str, Any]:
        return _checked("virtual network", self._read(
            f"GET virtual network {name!r} in resource group {self.rg!r}",
            lambda t: self.sdk.virtual_networks.get(self.rg, name, cls=_raw, **t)), "subnets")

    def get_subnet(self, vnet: str, name: str) -> dict[str, Any]:
        return _checked("subnet", self._read(
            f"GET subnet {name!r} of {vnet!r}",
            lambda t: self.sdk.subnets.get(self.rg, vnet, name, cls=_raw, **t)))

    def list_nics(self) -> list[dict[str, Any]]:
        def call(t: dict[str, float]) -> list[dict[str, Any]]:
            # Each page as ARM sent it (a paged list's cls= sees SDK models, not the wire).
            pages: list[Any] = []
            hook = lambda resp: pages.append(_raw(resp, None, None))  # noqa: E731
            for _ in self.sdk.network_interfaces.list(self.rg, raw_response_hook=hook, **t):
                pass
            return [n for p in pages for n in (p or {}).get("value") or []]

        nics = self._read(f"list network interfaces in resource group {self.rg!r}", call)
        return [_checked("network interface", n, "ipConfigurations") for n in nics]

    def _list_raw(self, what: str, op: Any) -> list[dict[str, Any]]:
        """Every item of a paged list, as ARM sent it."""
        def call(t: dict[str, float]) -> list[dict[str, Any]]:
            pages: list[Any] = []
            hook = lambda resp: pages.append(_raw(resp, None, None))  # noqa: E731
            for _ in op(self.rg, raw_response_hook=hook, **t):
                pass
            return [n for p in pages for n in (p or {}).get("value") or []]

        return self._read(f"list {what} in resource group {self.rg!r}", call)

    def list_public_ips(self) -> list[dict[str, Any]]:
        return [_checked("public IP address", p) for p in self._list_raw("public IP addresses",
                                                                         self.sdk.public_ip_addresses.list)]

    def list_nsgs_raw(self) -> list[dict[str, Any]]:
        """The group's NSGs as REST JSON (etags, tags, rules): what nestnet's rule writes start from."""
        return [_checked("network security group", n, "securityRules")
                for n in self._list_raw("network security groups", self.sdk.network_security_groups.list)]

    def get_nsg(self, name: str) -> dict[str, Any]:
        return _checked("network security group", self._read(
            f"GET network security group {name!r} in resource group {self.rg!r}",
            lambda t: self.sdk.network_security_groups.get(self.rg, name, cls=_raw, **t)), "securityRules")

    def list_nsgs(self) -> list[dict[str, Any]]:
        with _converted(f"list network security groups in resource group {self.rg!r}") as box:
            box.value = [n.as_dict() for n in self.sdk.network_security_groups.list(self.rg)]
        return box.value

    def get_nic(self, name: str) -> dict[str, Any]:
        return _checked("network interface", self._read(
            f"GET network interface {name!r} in resource group {self.rg!r}",
            lambda t: self.sdk.network_interfaces.get(self.rg, name, cls=_raw, **t)), "ipConfigurations")

    def effective_routes(self, nic: str) -> list[dict[str, Any]]:
        what = f"effective routes of NIC {nic!r}"

        def call(t: dict[str, float]) -> Any:
            with self._progress(f"effective routes of {nic}"):
                t.pop("timeout", None)
                poller = self.sdk.network_interfaces.begin_get_effective_route_table(self.rg, nic, cls=_raw, **t)
                return self._lro(what, poller)

        return list((self._read(what, call) or {}).get("value") or [])

    # -- writes: long-running, guarded by the etag that was read; not retried here ----------------
    def _write(self, what: str, progress: str, start: Callable[[dict[str, float]], Any]) -> dict[str, Any]:
        with _converted(what) as box, self._progress(progress):
            box.value = self._lro(what, start(self._timeouts(write=True)))
        return box.value

    def put_route_table(self, name: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        n = len(body.get("properties", {}).get("routes", []))
        return self._write(f"PUT route table {name!r}", f"PUT route table {name} ({n} routes)", lambda t:
                           self.sdk.route_tables.begin_create_or_update(
                               self.rg, name, _body(body), content_type="application/json", headers=headers,
                               cls=_raw, **t))

    def put_vnet(self, name: str, body: dict[str, Any], etag: str) -> dict[str, Any]:
        # Only for the apply lease's tag (modes without a route table): the whole VNet as just
        # read, subnets included, guarded by that read's etag (412 if anyone wrote it since).
        n = len(body.get("properties", {}).get("subnets") or [])
        return self._write(f"PUT virtual network {name!r}", f"PUT virtual network {name} ({n} subnets)", lambda t:
                           self.sdk.virtual_networks.begin_create_or_update(
                               self.rg, name, _body(body), content_type="application/json",
                               headers={"If-Match": etag}, cls=_raw, **t))

    def put_subnet(self, vnet: str, name: str, body: dict[str, Any], etag: str | None = None) -> dict[str, Any]:
        # Built from a GET made just before, guarded by the etag of that GET (412 if anyone wrote
        # the subnet, or its VNet, since; see docs/decisions/0021-azure-shared-subscription.md).
        headers = {"If-Match": etag} if etag else {}
        return self._write(f"PUT subnet {name!r} of {vnet!r}", f"PUT subnet {vnet}/{name}", lambda t:
                           self.sdk.subnets.begin_create_or_update(
                               self.rg, vnet, name, _body(body), content_type="application/json", headers=headers,
                               cls=_raw, **t))

    def put_nic(self, name: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {}
        n = len(body.get("properties", {}).get("ipConfigurations") or [])
        return self._write(f"PUT network interface {name!r}", f"PUT NIC {name} ({n} ip configurations)", lambda t:
                           self.sdk.network_interfaces.begin_create_or_update(
                               self.rg, name, _body(body), content_type="application/json", headers=headers,
                               cls=_raw, **t))


    def put_public_ip(self, name: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}  # a create never replaces one
        return self._write(f"PUT public IP address {name!r}", f"PUT public IP {name}", lambda t:
                           self.sdk.public_ip_addresses.begin_create_or_update(
                               self.rg, name, _body(body), content_type="application/json", headers=headers,
                               cls=_raw, **t))

    def delete_public_ip(self, name: str, etag: str | None) -> None:
        headers = {"If-Match": etag} if etag else {}
        self._write(f"DELETE public IP address {name!r}", f"DELETE public IP {name}", lambda t:
                    self.sdk.public_ip_addresses.begin_delete(self.rg, name, headers=headers, **t))

    def put_security_rule(self, nsg: str, name: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        return self._write(f"PUT security rule {name!r} of {nsg!r}", f"PUT NSG rule {nsg}/{name}", lambda t:
                           self.sdk.security_rules.begin_create_or_update(
                               self.rg, nsg, name, _body(body), content_type="application/json", headers=headers,
                               cls=_raw, **t))

    def delete_security_rule(self, nsg: str, name: str, etag: str | None) -> None:
        headers = {"If-Match": etag} if etag else {}
        self._write(f"DELETE security rule {name!r} of {nsg!r}", f"DELETE NSG rule {nsg}/{name}", lambda t:
                    self.sdk.security_rules.begin_delete(self.rg, nsg, name, headers=headers, **t))


def _checked(kind: str, res: Any, items_key: str | None = None, optional: bool = False) -> Any:
    """ARM's answer must be the JSON shape nestnet reads; anything else is one line, not a traceback.

    ``items_key``: the child list nestnet reads by name (a table's routes, a VNet's subnets, a
    NIC's ipConfigurations). A child without a name cannot be told nestnet's or foreign.
    """
    if res is None and optional:
        return None
    if not isinstance(res, dict) or not isinstance(res.get("name"), str) or not res["name"]:
        raise ServiceError(f"ARM answered for a {kind} with something that has no name: nestnet cannot read it safely")
    what = f"{kind} {res['name']!r}"
    props = res.get("properties")
    if props is not None and not isinstance(props, dict):
        raise ServiceError(f"ARM answered for {what} with properties that are not an object")
    items = (props or {}).get(items_key) if items_key else None
    if items is not None:
        if not isinstance(items, list):
            raise ServiceError(f"ARM answered for {what} with {items_key} that is not a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise ServiceError(
                    f"ARM answered for {what} with {items_key}[{i}] without a name: nestnet cannot tell whose it "
                    "is, so it changes nothing"
                )
            if item.get("properties") is not None and not isinstance(item["properties"], dict):
                raise ServiceError(f"ARM answered for {what} with {items_key}[{i}] properties that are not an object")
    return res


class _Box:
    value: Any = None


class _converted:
    """Run an SDK call; turn its failure into one nestnet error line naming the operation."""

    def __init__(self, what: str, missing_ok: bool = False):
        self.what, self.missing_ok, self.box = what, missing_ok, _Box()

    def __enter__(self) -> _Box:
        return self.box

    def __exit__(self, etype: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, (AzureError, ServiceError, UsageError)):
            return False
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
            raise ServiceError(f"{self.what}: {NO_CREDENTIAL}") from exc
        if isinstance(exc, HttpResponseError):
            status = getattr(exc, "status_code", None)
            if status == 404 and self.missing_ok:
                self.box.value = None
                return True
            code, msg, lro_status, retry_after = _arm_error(exc)
            line = f"{self.what}: HTTP {status} {code}: {' '.join(str(msg).split())}".rstrip(": ")
            if status == 412:
                raise EtagMismatch(f"{self.what}: changed since it was read (412 {code})") from exc
            if status in (401, 403):
                raise ServiceError(line) from exc
            canceled = (lro_status or "").lower() in CANCELED_STATES
            if canceled or code.lower() in BUSY_CODES or status == 429 or status == 408 or (status or 0) >= 500:
                if canceled and not code:
                    code = "Canceled"
                raise ArmBusy(f"{self.what}: ARM answered {status} {code}".rstrip(), code or str(status), retry_after) from exc
            raise AzureError(line) from exc
        if isinstance(exc, ServiceResponseError):
            raise ServiceError(f"{self.what}: no answer from ARM in time: {_first_line(str(exc))}") from exc
        if isinstance(exc, ServiceRequestError):
            raise ServiceError(f"{self.what}: cannot reach ARM: {_first_line(str(exc))}") from exc
        try:
            from azure.identity import CredentialUnavailableError
        except ImportError:  # pragma: no cover - azure-identity is a dependency
            CredentialUnavailableError = ()  # type: ignore[assignment]
        if isinstance(exc, CredentialUnavailableError):
            raise ServiceError(f"{self.what}: {NO_CREDENTIAL}") from exc
        from azure.core.exceptions import AzureError as SdkError

        if isinstance(exc, SdkError):
            raise ServiceError(f"{self.what}: {_first_line(str(exc))}") from exc
        if isinstance(exc, json.JSONDecodeError):
            # An answer that is not JSON: ARM's (or a proxy's) fault, not nestnet's.
            raise ServiceError(f"{self.what}: ARM's answer is not JSON ({_first_line(str(exc))})") from exc
        return False


def _arm_error(exc: Any) -> tuple[str, str, str | None, float | None]:
    """(ARM error code, message, LRO status, Retry-After seconds) from an HttpResponseError."""
    code = msg = ""
    status: str | None = None
    response = getattr(exc, "response", None)
    try:
        body = json.loads(response.text()) if response is not None else None
    except Exception:  # a non-JSON body: fall back to the exception text
        body = None
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = str(err.get("code") or "")
        msg = str(err.get("message") or "")
        status = body.get("status") if isinstance(body.get("status"), str) else None
    if not code:
        err = getattr(exc, "error", None)
        code = str(getattr(err, "code", None) or "")
        msg = msg or str(getattr(err, "message", None) or "")
    if not msg:
        msg = _first_line(str(exc))
    return code, msg, status, _retry_after(response)


def _retry_after(response: Any) -> float | None:
    """Retry-After in seconds (ARM sends delta-seconds; an HTTP date is allowed by RFC 9110)."""
    value = (getattr(response, "headers", None) or {}).get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
