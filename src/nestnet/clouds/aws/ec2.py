"""The seam to EC2: the only module that imports boto3. Errors become one line.

Credentials, endpoint and CA come from AWS's default chain (environment, shared config and
credentials files, SSO, the instance's role); ``AWS_ENDPOINT_URL`` (or ``endpoint_url`` in the
config file) points boto3 at an emulator, ``AWS_CA_BUNDLE`` at its CA. The Region is the spec's.

The SDK retries throttling (``RequestLimitExceeded``) and 5xx answers itself (standard retry mode,
``NESTNET_AWS_MAX_ATTEMPTS`` tries, default 8); what is still refused becomes ``AwsError`` (exit 3)
naming the call, the resource, EC2's code and message. ``DependencyViolation`` (EC2 still busy
with a dependent resource) is retried a few times with back-off first.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from ...errors import ServiceError, UsageError

DEFAULT_ATTEMPTS = 8
DEPENDENCY_RETRIES = 4
AUTH_CODES = {"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
              "OptInRequired", "ExpiredToken", "RequestExpired"}


class AwsError(ServiceError):
    """EC2 refused a call, or could not be reached or authorized (exit 3)."""


def _attempts(env: Mapping[str, str]) -> int:
    from ... import env as variables

    n: int | None = variables.get("NESTNET_AWS_MAX_ATTEMPTS", env)
    return DEFAULT_ATTEMPTS if n is None else n


class Ec2Client:
    def __init__(self, region: str, env: Mapping[str, str] | None = None, sleep: Callable[[float], None] = time.sleep):
        import boto3
        from botocore.config import Config

        e = os.environ if env is None else env
        kwargs: dict[str, Any] = {}
        if env is not None:  # an explicit environment (tests, the lab): only what it says
            for key, arg in (("AWS_ENDPOINT_URL", "endpoint_url"), ("AWS_CA_BUNDLE", "verify"),
                             ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
                             ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"), ("AWS_SESSION_TOKEN", "aws_session_token")):
                if e.get(key):
                    kwargs[arg] = e[key]
        cfg = Config(retries={"mode": "standard", "max_attempts": _attempts(e)}, connect_timeout=10, read_timeout=60)
        try:
            self._ec2 = boto3.session.Session(region_name=region).client("ec2", config=cfg, **kwargs)
        except Exception as exc:  # a malformed endpoint URL or config file
            raise UsageError(f"aws: cannot set up the EC2 client: {_first_line(str(exc))}") from None
        self.region = region
        self.reads = 0
        self.writes = 0
        self._sleep = sleep

    # -- the one way every call goes ----------------------------------------------------------
    def call(self, op: str, what: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )

        write = not op.startswith(("describe_", "get_"))
        for attempt in range(DEPENDENCY_RETRIES + 1):
            try:
                out = getattr(self._ec2, op)(**params)
                if write:
                    self.writes += 1
                else:
                    self.reads += 1
                return out
            except ClientError as exc:
                err = exc.response.get("Error") or {}
                code, msg = err.get("Code", "?"), _first_line(err.get("Message", ""))
                status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
                if code == "DependencyViolation" and attempt < DEPENDENCY_RETRIES:
                    self._sleep(min(8.0, 0.5 * 2 ** attempt))
                    continue
                if code in AUTH_CODES:
                    raise AwsError(f"{what}: EC2 did not authorize {_action(op)}: {code}: {msg}") from None
                tries = (exc.response.get("ResponseMetadata") or {}).get("RetryAttempts", 0)
                again = f" (after {tries + 1} tries)" if tries else ""
                raise AwsError(f"{what}: EC2 refused {_action(op)}{again}: {code}"
                               f"{f' ({status})' if status and status >= 500 else ''}: {msg}") from None
            except NoCredentialsError:
                raise AwsError(f"{what}: no AWS credentials (environment, ~/.aws, SSO or an instance role)") from None
            except NoRegionError:
                raise AwsError(f"{what}: no AWS Region (aws.region)") from None
            except EndpointConnectionError as exc:
                raise AwsError(f"{what}: cannot reach EC2: {_first_line(str(exc))}") from None
            except BotoCoreError as exc:
                raise AwsError(f"{what}: {_first_line(str(exc))}") from None
        raise AssertionError("unreachable")

    def _pages(self, op: str, key: str, what: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.call(op, what, **params, **({"NextToken": token} if token else {}))
            out += page.get(key) or []
            token = page.get("NextToken")
            if not token:
                return out

    # -- reads ------------------------------------------------------------------------------------
    def vpc(self, ref: str) -> dict[str, Any]:
        if ref.startswith("vpc-"):
            found = self.call("describe_vpcs", f"VPC {ref}", Filters=[{"Name": "vpc-id", "Values": [ref]}])["Vpcs"]
        else:
            found = self.call("describe_vpcs", f"VPC {ref!r}", Filters=[{"Name": "tag:Name", "Values": [ref]}])["Vpcs"]
        if len(found) != 1:
            raise UsageError(f"aws.vpc {ref!r}: {'no' if not found else 'more than one'} VPC in {self.region} has this "
                             f"id or Name tag ({len(found)} found)")
        return found[0]

    def _in_vpc(self, vpc_id: str) -> list[dict[str, Any]]:
        return [{"Name": "vpc-id", "Values": [vpc_id]}]

    def subnets(self, vpc_id: str) -> list[dict[str, Any]]:
        return self._pages("describe_subnets", "Subnets", f"subnets of {vpc_id}", Filters=self._in_vpc(vpc_id))

    def enis(self, vpc_id: str) -> list[dict[str, Any]]:
        return self._pages("describe_network_interfaces", "NetworkInterfaces", f"network interfaces of {vpc_id}",
                           Filters=self._in_vpc(vpc_id))

    def eni(self, eni_id: str) -> dict[str, Any]:
        return self.call("describe_network_interfaces", f"network interface {eni_id}",
                         NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]

    def route_tables(self, vpc_id: str) -> list[dict[str, Any]]:
        return self._pages("describe_route_tables", "RouteTables", f"route tables of {vpc_id}",
                           Filters=self._in_vpc(vpc_id))

    def route_table(self, table_id: str) -> dict[str, Any]:
        return self.call("describe_route_tables", f"route table {table_id}", RouteTableIds=[table_id])["RouteTables"][0]

    def instances(self, vpc_id: str) -> list[dict[str, Any]]:
        res = self._pages("describe_instances", "Reservations", f"instances of {vpc_id}", Filters=self._in_vpc(vpc_id))
        return [i for r in res for i in r.get("Instances") or []]

    def address_limits(self, types: list[str]) -> dict[str, int]:
        if not types:
            return {}
        found = self.call("describe_instance_types", "instance types", InstanceTypes=sorted(set(types)))
        return {t["InstanceType"]: int(t["NetworkInfo"]["Ipv4AddressesPerInterface"])
                for t in found.get("InstanceTypes") or [] if (t.get("NetworkInfo") or {}).get("Ipv4AddressesPerInterface")}

    # -- writes -----------------------------------------------------------------------------------
    def assign_prefixes(self, eni: str, prefixes: list[str]) -> None:
        self.call("assign_private_ip_addresses", f"network interface {eni}", NetworkInterfaceId=eni, Ipv4Prefixes=prefixes)

    def unassign_prefixes(self, eni: str, prefixes: list[str]) -> None:
        self.call("unassign_private_ip_addresses", f"network interface {eni}", NetworkInterfaceId=eni,
                  Ipv4Prefixes=prefixes)

    def assign_ips(self, eni: str, ips: list[str]) -> None:
        self.call("assign_private_ip_addresses", f"network interface {eni}", NetworkInterfaceId=eni,
                  PrivateIpAddresses=ips)

    def unassign_ips(self, eni: str, ips: list[str]) -> None:
        self.call("unassign_private_ip_addresses", f"network interface {eni}", NetworkInterfaceId=eni,
                  PrivateIpAddresses=ips)

    def source_dest_check_off(self, eni: str) -> None:
        self.call("modify_network_interface_attribute", f"network interface {eni}", NetworkInterfaceId=eni,
                  SourceDestCheck={"Value": False})

    def create_route(self, table: str, destination: str, eni: str) -> None:
        self.call("create_route", f"route {destination} in {table}", RouteTableId=table,
                  DestinationCidrBlock=destination, NetworkInterfaceId=eni)

    def replace_route(self, table: str, destination: str, eni: str) -> None:
        self.call("replace_route", f"route {destination} in {table}", RouteTableId=table,
                  DestinationCidrBlock=destination, NetworkInterfaceId=eni)

    def delete_route(self, table: str, destination: str) -> None:
        self.call("delete_route", f"route {destination} in {table}", RouteTableId=table,
                  DestinationCidrBlock=destination)


def _action(op: str) -> str:
    return "".join(p.capitalize() for p in op.split("_"))


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]
