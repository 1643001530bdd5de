"""The embedded AWS emulator (moto server) and the resources the template declares.

moto runs in a child process so its request handling never competes with the gateway's
event loop for the GIL. Resources are created from the translated template: the
CloudFormation properties of a table or a user pool are, name for name, the arguments of
the matching API call, so we pass them through, filtered by botocore's own model of that
call. moto's CloudFormation is not used because it silently skips ApiGatewayV2.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from wsstack.gateway.core import default_api_id
from wsstack.hosts import DEFAULT_HOST, url_host
from wsstack.model import App, Resource
from wsstack.template import DEFAULT_REGION, TemplateError, resolve

__all__ = ["Emulator", "PortInUse", "aws_client", "create_resources"]

log = logging.getLogger("wsstack.emulator")

#: Dummy credentials: moto accepts any, and real ones must never leak into a local run.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def aws_client(service: str, endpoint_url: str | None, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client for the emulator (or, with ``endpoint_url=None``, boto3's defaults)."""
    if endpoint_url is None:
        return boto3.client(service, region_name=region)
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


class PortInUse(Exception):
    """A server of the stack could not listen where it was asked to; the message says what to pass."""


class Emulator:
    """moto server in a child process, on 127.0.0.1 by default.

    Args:
        port: TCP port, 0 for a free one.
        python: the interpreter to run moto with.
        host: the address to listen on; with 0.0.0.0 the endpoint URL still names 127.0.0.1.
    """

    def __init__(self, port: int = 0, python: str = sys.executable, *, host: str = DEFAULT_HOST) -> None:
        self._port = port
        self._python = python
        self._host = host
        self._proc: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    def start(self, timeout: float = 30.0, *, announce: bool = True) -> str:
        """Start moto and return its endpoint URL once it accepts requests.

        Args:
            timeout: Seconds to wait for the child to bind its port.
            announce: Log the endpoint; a caller that may yet fail for another reason (a bad
                template read meanwhile) calls :meth:`announce` itself once that is settled.
        """
        self._proc = subprocess.Popen(
            # A lean module (standard library only until it serves): start-up is on the
            # critical path. Its name still contains "wsstack.emulator" for tools that look.
            [self._python, "-m", "wsstack.emulator_server", "--port", str(self._port), "--host", self._host],
            # The child exits when this pipe closes, so it cannot outlive us even if we are
            # killed; its own session keeps a terminal's Ctrl-C for us to handle in order.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        # The child prints one JSON line with its port once the socket is bound.
        line = _readline_within(self._proc, timeout)
        said = None
        try:
            said = json.loads(line)
            port = said["port"]
        except (ValueError, KeyError, TypeError):
            self.stop()
            reason = said.get("error") if isinstance(said, dict) else None
            raise PortInUse(
                f"The AWS emulator could not listen on {self._host}:{self._port}"
                f"{f' ({reason})' if reason else ''}; pass --emulator-port 0 for a free port."
            ) from None
        self.endpoint_url = f"http://{url_host(self._host)}:{port}"
        if announce:
            self.announce()
        return self.endpoint_url

    def announce(self) -> None:
        """Log where the emulator listens."""
        log.info("AWS emulator (moto) at %s", self.endpoint_url)

    def stop(self) -> None:
        """Stop the child process; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _readline_within(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                return proc.stdout.readline()
            if proc.poll() is not None:
                break
    return ""


def _api_arguments(client: Any, operation: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the properties that are arguments of ``operation`` in botocore's model."""
    members = client.meta.service_model.operation_model(operation).input_shape.members
    return {key: value for key, value in props.items() if key in members}


#: Concurrent creations at most; moto serves one request at a time anyway
#: (see wsstack.emulator_server.serve).
_CREATE_THREADS = 4

#: What creating a resource gives: its ``Ref`` value, and ``Fn::GetAtt`` values known only now.
_Created = tuple[str, dict[str, str]]


def _create_table(res: Resource, props: dict[str, Any], client: Any) -> _Created:
    name = props.get("TableName") or res.logical_id
    args = _api_arguments(client, "CreateTable", {**props, "TableName": name})
    if "StreamSpecification" in props:  # CloudFormation leaves StreamEnabled implicit
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    created = client.create_table(**args)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    # Fn::GetAtt Table.StreamArn embeds the stream's creation time: known only now.
    stream = created.get("LatestStreamArn")
    return str(name), ({"StreamArn": stream} if stream else {})


def _create_user_pool(res: Resource, props: dict[str, Any], client: Any) -> _Created:
    args = _api_arguments(client, "CreateUserPool", props)
    args["PoolName"] = props.get("UserPoolName") or res.logical_id
    return str(client.create_user_pool(**args)["UserPool"]["Id"]), {}


def _create_user_pool_client(res: Resource, props: dict[str, Any], client: Any) -> _Created:
    args = _api_arguments(client, "CreateUserPoolClient", props)
    args.setdefault("ClientName", res.logical_id)
    return str(client.create_user_pool_client(**args)["UserPoolClient"]["ClientId"]), {}


#: Resource type -> (boto3 service, creator). Listed in creation order: a pool client needs
#: its pool's id, so it comes in a later wave (see _WAVES).
_CREATORS: dict[str, tuple[str, Callable[[Resource, dict[str, Any], Any], _Created]]] = {
    "AWS::DynamoDB::Table": ("dynamodb", _create_table),
    "AWS::Cognito::UserPool": ("cognito-idp", _create_user_pool),
    "AWS::Cognito::UserPoolClient": ("cognito-idp", _create_user_pool_client),
}
#: Resources of one wave do not refer to each other, so they are created concurrently.
_WAVES = (
    ("AWS::DynamoDB::Table", "AWS::Cognito::UserPool"),
    ("AWS::Cognito::UserPoolClient",),
)


#: Sub-resources of an API whose Ref is a short generated id on AWS (``"a1b2c3d"``).
_ID_ONLY = (
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::RouteResponse",
)


def _named_only_locally(app: App, refs: Mapping[str, str]) -> dict[str, str]:
    """``Ref`` values of resources nothing is created for, so environments may name them.

    A stage's Ref is its name; routes, integrations, authorizers and deployments get stable
    ids shaped like AWS's; an IAM role's Ref is its name (no policy is enforced locally).
    """
    named: dict[str, str] = {}
    for res in app.resources.values():
        if res.type == "AWS::ApiGatewayV2::Stage":
            named[res.logical_id] = str(resolve(res.properties.get("StageName"), refs, app.parameters))
        elif res.type in _ID_ONLY:
            named[res.logical_id] = default_api_id(res.logical_id)[:7]
        elif res.type == "AWS::IAM::Role":
            role_name = res.properties.get("RoleName")
            named[res.logical_id] = role_name if isinstance(role_name, str) else res.logical_id
    return named


def create_resources(
    app: App, *, endpoint_url: str | None = None, region: str = DEFAULT_REGION
) -> dict[str, str]:
    """Create the template's tables, user pools and pool clients in the emulator.

    Args:
        app: the application read from the template.
        endpoint_url: the emulator; ``None`` uses boto3's defaults (e.g. inside ``mock_aws``).
        region: the region to create them in.

    Returns:
        What ``Ref`` gives for each created resource, by logical id (table name, pool id,
        client id); the same for resources that exist only as names locally (functions,
        by ``FunctionName`` where set; APIs and their stages, routes, integrations, authorizers, roles); and, under
        ``"<LogicalId>.<Attribute>"``, ``Fn::GetAtt`` values known only once created (a
        table's ``StreamArn``). Pass the result to :func:`~wsstack.template.resolve`.
    """
    # A function's Ref is its name, as on AWS: FunctionName where set, else the logical id.
    refs: dict[str, str] = {fn.logical_id: fn.name for fn in app.functions.values()}
    refs.update({api.logical_id: default_api_id(api.logical_id) for api in app.apis.values()})
    refs.update(_named_only_locally(app, refs))
    # One client per service, made here: building clients from boto3's shared default session
    # is not thread-safe, while calls on a built client are.
    clients: dict[str, Any] = {}
    for type_name, (service, _) in _CREATORS.items():
        if service not in clients and app.of_type(type_name):
            clients[service] = aws_client(service, endpoint_url, region)

    def create(type_name: str, res: Resource) -> _Created:
        service, creator = _CREATORS[type_name]
        try:
            props = resolve(res.properties, refs, app.parameters, region=region, resources=app.resources)
            return creator(res, props, clients[service])
        except TemplateError as exc:
            raise TemplateError(f"{res.logical_id}: {exc}") from None

    # Each call is a round trip to the emulator, mostly waiting: threads overlap them.
    with ThreadPoolExecutor(max_workers=_CREATE_THREADS) as pool:
        for wave in _WAVES:
            jobs = [(type_name, res) for type_name in wave for res in app.of_type(type_name)]
            futures = [pool.submit(create, type_name, res) for type_name, res in jobs]
            # Results are recorded in template order whatever order they finish in, and the
            # first failure (in that order) is the one raised.
            for (type_name, res), future in zip(jobs, futures, strict=True):
                refs[res.logical_id], attributes = future.result()
                refs.update({f"{res.logical_id}.{name}": value for name, value in attributes.items()})
                log.debug("created %s %s -> %s", type_name, res.logical_id, refs[res.logical_id])
    return refs


if __name__ == "__main__":
    # The child process is wsstack.emulator_server, which imports none of the above; this
    # spelling still works, only slower to start.
    from wsstack.emulator_server import main

    main()
