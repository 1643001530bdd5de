"""The embedded AWS emulator (moto server) and the resources the template declares.

moto runs in a child process so its request handling never competes with the gateway's
event loop for the GIL. Resources are created from the translated template: the
CloudFormation properties of a table or a user pool are, name for name, the arguments of
the matching API call, so we pass them through, filtered by botocore's own model of that
call. moto's CloudFormation is not used because it silently skips ApiGatewayV2.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

from wsstack.gateway.core import default_api_id
from wsstack.hosts import DEFAULT_HOST, url_host
from wsstack.lockfile import LockFile, LockHeld
from wsstack.model import App, Resource
from wsstack.snapshot import SNAPSHOT_NAME
from wsstack.template import DEFAULT_REGION, TemplateError, api_key_id, resolve

__all__ = ["DataError", "Emulator", "InUse", "PortInUse", "aws_client", "claim", "create_resources", "forget_clients"]

log = logging.getLogger("wsstack.emulator")

#: Dummy credentials: moto accepts any, and real ones must never leak into a local run.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


#: The session :func:`aws_client` makes clients from: the stack's own, not boto3's default
#: one, so that letting it go (:func:`forget_clients`) touches nothing of a process that runs
#: the stack in-process (a test run).
_session: boto3.session.Session | None = None


def forget_clients() -> None:
    """Let go of what :func:`aws_client` has loaded so far; the next call loads it again.

    A boto3 session keeps, for its life, botocore's data parsed for the clients it made (the
    endpoints file alone is 7 MB of objects). The stack needs its clients at start-up only.
    """
    global _session
    _session = None


def aws_client(service: str, endpoint_url: str | None, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client for the emulator (or, with ``endpoint_url=None``, boto3's defaults)."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    if endpoint_url is None:
        return _session.client(service, region_name=region)
    return _session.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


class PortInUse(Exception):
    """A server of the stack could not listen where it was asked to; the message says what to pass."""


class InUse(Exception):
    """A running stack owns what this one was asked to use (its data folder, its state file);
    the message names it and says what to pass."""


class DataError(Exception):
    """A data folder or state file that cannot be used or read; the message says what to pass."""


#: The lock file in a data folder: held by the stack (and its emulator) that uses the folder.
DATA_LOCK_NAME = "lock"

#: Seconds the emulator may take to write its data when it stops, before it is killed.
SAVE_TIMEOUT = 120.0


def claim(path: Path, *, busy: str, unusable: str) -> LockFile:
    """Take the lock file at ``path`` for this stack (see :mod:`wsstack.lockfile`).

    Args:
        busy: the sentence when a running stack holds it; ``{holder}`` becomes " (pid N)"
            (replaced, not formatted: a path may hold braces).
        unusable: the sentence when it cannot be taken; ``{reason}`` becomes the OS's words.

    Raises:
        InUse: a running stack holds it.
        DataError: it cannot be created or locked.
    """
    try:
        return LockFile.acquire(path)
    except LockHeld as held:
        raise InUse(busy.replace("{holder}", f" (pid {held.pid})" if held.pid else "")) from None
    except OSError as exc:
        raise DataError(unusable.replace("{reason}", str(exc.strerror or exc))) from None


class Emulator:
    """moto server in a child process, on 127.0.0.1 by default.

    Args:
        port: TCP port, 0 for a free one.
        python: the interpreter to run moto with.
        host: the address to listen on; with 0.0.0.0 the endpoint URL still names 127.0.0.1.
        data_dir: keep the emulator's data in this folder across restarts (see
            :mod:`wsstack.snapshot`); None keeps it in memory only.
        fresh: discard the data saved in ``data_dir`` rather than restore it.
    """

    def __init__(
        self,
        port: int = 0,
        python: str = sys.executable,
        *,
        host: str = DEFAULT_HOST,
        data_dir: Path | None = None,
        fresh: bool = False,
    ) -> None:
        self._port = port
        self._python = python
        self._host = host
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: LockFile | None = None
        self.data_dir = data_dir
        self.fresh = fresh
        #: What became of the saved data at start: "restored", "empty" or "set_aside"
        #: (the child's report, with counts); empty when the data lives in memory only.
        self.data: dict[str, Any] = {}
        self.endpoint_url = ""

    def claim(self) -> None:
        """Lock the data folder for this stack; idempotent, and a no-op without a data folder.

        :meth:`start` claims it too; a caller claims it first to refuse early.

        Raises:
            InUse: another running stack uses the folder.
        """
        if self.data_dir is None or self._lock is not None:
            return
        self._lock = claim(
            self.data_dir / DATA_LOCK_NAME,
            busy=f"The data folder {self.data_dir} is in use by another running stack{{holder}}; "
            "pass --data-dir with another folder, or stop that stack.",
            unusable=f"The data folder {self.data_dir} cannot be used ({{reason}}); pass --data-dir with "
            "a folder you can write, or --no-persist.",
        )

    def start(self, timeout: float = 30.0, *, announce: bool = True) -> str:
        """Start moto and return its endpoint URL once it accepts requests.

        Args:
            timeout: Seconds to wait for the child to bind its port (and again to restore
                its data).
            announce: Log the endpoint; a caller that may yet fail for another reason (a bad
                template read meanwhile) calls :meth:`announce` itself once that is settled.

        Raises:
            PortInUse: the port is taken.
            InUse: another running stack uses the data folder.
        """
        self.claim()
        data_args: list[str] = []
        if self.data_dir is not None:
            data_args = ["--data-dir", str(self.data_dir), *(["--fresh"] if self.fresh else [])]
        self._proc = subprocess.Popen(
            # A lean module (standard library only until it serves): start-up is on the
            # critical path. Its name still contains "wsstack.emulator" for tools that look.
            [self._python, "-m", "wsstack.emulator_server", "--port", str(self._port), "--host", self._host,
             *data_args],
            # The child exits when this pipe closes, so it cannot outlive us even if we are
            # killed; its own session keeps a terminal's Ctrl-C for us to handle in order.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            # Unbuffered, so that a line the child wrote is never held in our buffer while
            # we wait on the pipe for it (it writes a second one right after the first).
            bufsize=0,
            start_new_session=True,
            # The child holds the data folder's lock too, so that if we die first no other
            # stack takes the folder before the child has written its data.
            pass_fds=(self._lock.fileno(),) if self._lock is not None else (),
        )
        assert self._proc.stdout is not None
        # The child prints one JSON line with its port once the socket is bound.
        line = _readline_within(self._proc, timeout)
        said = None
        try:
            said = json.loads(line)
            port = said["port"]
        except (ValueError, KeyError, TypeError):
            self.stop(save=False)
            reason = said.get("error") if isinstance(said, dict) else None
            raise PortInUse(
                f"The AWS emulator could not listen on {self._host}:{self._port}"
                f"{f' ({reason})' if reason else ''}; pass --emulator-port 0 for a free port."
            ) from None
        self.endpoint_url = f"http://{url_host(self._host)}:{port}"
        if self.data_dir is not None:
            self._read_restore_report(timeout)
        if announce:
            self.announce()
        return self.endpoint_url

    def _read_restore_report(self, timeout: float) -> None:
        # The child restores before it serves a request, so waiting for its report costs
        # nothing: our first request would wait as long.
        assert self._proc is not None and self.data_dir is not None
        line = _readline_within(self._proc, timeout)
        try:
            self.data = json.loads(line)
        except ValueError:
            self.stop(save=False)
            raise DataError(
                f"The AWS emulator did not restore the data in {self.data_dir} within {timeout:.0f} s; "
                "pass --fresh to start empty, or --no-persist to keep everything in memory."
            ) from None
        snapshot = self.data_dir / SNAPSHOT_NAME
        if self.data.get("data") == "restored":
            log.info(
                "data restored from %s: %s tables with %s items, %s user pools with %s users (%s in %.0f ms)",
                snapshot, self.data["tables"], self.data["items"], self.data["user_pools"], self.data["users"],
                _size(self.data["bytes"]), self.data["ms"],
            )
        elif self.data.get("data") == "set_aside":
            log.warning(
                "data in %s could not be read (%s); set it aside as %s and started empty",
                snapshot, self.data.get("reason"), self.data.get("path") or "(not renamed)",
            )

    def announce(self) -> None:
        """Log where the emulator listens."""
        log.info("AWS emulator (moto) at %s", self.endpoint_url)

    def stop(self, *, save: bool = True) -> None:
        """Stop the child process; idempotent.

        Args:
            save: let the child write its data first (if it keeps any); False ends it at once,
                leaving the saved data as it was (a stack that failed to start changed nothing).
        """
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None and not save:
                proc.kill()
                proc.wait(timeout=5)
            elif proc is not None and proc.poll() is None:
                proc.terminate()
                # Its stdout closes as it exits: waiting on the pipe returns then, where
                # Popen.wait(timeout) would poll, up to 50 ms late.
                output = _read_to_end(proc, SAVE_TIMEOUT if self.data_dir is not None else 5)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
                    if self.data_dir is not None:
                        log.error("the AWS emulator did not write its data within %.0f s; it was killed", SAVE_TIMEOUT)
                self._log_save_report(output)
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
            if proc is not None and proc.stdin is not None:
                proc.stdin.close()
        finally:
            if self._lock is not None and (proc is None or proc.poll() is not None):
                self._lock.release()
                self._lock = None

    def _log_save_report(self, output: str) -> None:
        for line in output.splitlines():
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                if report.get("data") == "saved":
                    log.info("data saved to %s (%s in %.0f ms)", self.data_dir, _size(report["bytes"]), report["ms"])
                elif report.get("data") == "not_saved":
                    log.error("data could not be saved to %s: %s", self.data_dir, report.get("reason"))


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 10 * 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"



def _read_to_end(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """What the child writes on stdout until it closes it (by exiting), or ``timeout`` passes."""
    import selectors

    assert proc.stdout is not None
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if sel.select(timeout=left):
                chunk = proc.stdout.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _readline_within(proc: subprocess.Popen[bytes], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                return proc.stdout.readline().decode(errors="replace")
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
    if "SSESpecification" in props:  # CloudFormation spells the API's Enabled as SSEEnabled
        sse = dict(props["SSESpecification"])
        if "SSEEnabled" in sse:
            sse["Enabled"] = sse.pop("SSEEnabled")
        args["SSESpecification"] = sse
    try:
        table = client.create_table(**args)["TableDescription"]
    except client.exceptions.ResourceInUseException:
        # Kept from the last run (see wsstack.snapshot): reused with its items while the
        # template still gives it the same keys, indexes and stream.
        table = client.describe_table(TableName=name)["Table"]
        if _table_shape(table) != _table_shape(args):
            count = table.get("ItemCount", 0)
            client.delete_table(TableName=name)
            table = client.create_table(**args)["TableDescription"]
            log.warning(
                "%s: the template changed the keys, indexes or stream of table %s; recreated it, "
                "dropping its %s items", res.logical_id, name, count,
            )
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    # Fn::GetAtt Table.StreamArn embeds the stream's creation time: known only now.
    stream = table.get("LatestStreamArn")
    return str(name), ({"StreamArn": stream} if stream else {})


def _table_shape(table: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a table (a CreateTable call or a DescribeTable answer) its items depend on."""

    def keys(schema: Any) -> tuple[tuple[str, str], ...]:
        return tuple((k["AttributeName"], k["KeyType"]) for k in schema or ())

    def indexes(found: Any) -> frozenset[Any]:
        return frozenset(
            (index["IndexName"], keys(index["KeySchema"]), index.get("Projection", {}).get("ProjectionType", "ALL"),
             frozenset(index.get("Projection", {}).get("NonKeyAttributes", ())))
            for index in found or ()
        )

    key_names = {k["AttributeName"] for k in table.get("KeySchema", ())}
    for index in (*table.get("GlobalSecondaryIndexes", ()), *table.get("LocalSecondaryIndexes", ())):
        key_names.update(k["AttributeName"] for k in index["KeySchema"])
    stream = table.get("StreamSpecification") or {}
    return (
        keys(table.get("KeySchema")),
        frozenset((d["AttributeName"], d["AttributeType"]) for d in table.get("AttributeDefinitions", ())
                  if d["AttributeName"] in key_names),
        indexes(table.get("GlobalSecondaryIndexes")),
        indexes(table.get("LocalSecondaryIndexes")),
        stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
    )


def _create_user_pool(res: Resource, props: dict[str, Any], client: Any) -> _Created:
    args = _api_arguments(client, "CreateUserPool", props)
    args["PoolName"] = props.get("UserPoolName") or res.logical_id
    # A pool kept from the last run, found by name, keeps its id, so tokens and clients that
    # name it stay valid. It keeps its settings too (moto's UpdateUserPool would reset the
    # ones it does not take, such as UsernameAttributes): --fresh applies changed ones.
    existing = _find(client, "list_user_pools", "UserPools", "Name", args["PoolName"], MaxResults=60)
    if existing is not None:
        return str(existing["Id"]), {}
    return str(client.create_user_pool(**args)["UserPool"]["Id"]), {}


def _create_user_pool_client(res: Resource, props: dict[str, Any], client: Any) -> _Created:
    args = _api_arguments(client, "CreateUserPoolClient", props)
    args.setdefault("ClientName", res.logical_id)
    # A client kept from the last run, found by name in its pool, keeps its id (apps and
    # running clients hold it); the template's settings are applied to it again.
    existing = _find(client, "list_user_pool_clients", "UserPoolClients", "ClientName", args["ClientName"],
                     UserPoolId=args["UserPoolId"], MaxResults=60)
    if existing is None:
        return str(client.create_user_pool_client(**args)["UserPoolClient"]["ClientId"]), {}
    update = _api_arguments(client, "UpdateUserPoolClient", args)
    client.update_user_pool_client(**update, ClientId=existing["ClientId"])
    return str(existing["ClientId"]), {}


def _find(client: Any, operation: str, key: str, field: str, value: str, **kwargs: Any) -> dict[str, Any] | None:
    """The first listed resource whose ``field`` is ``value``, following NextToken; None if none."""
    token: str | None = None
    while True:
        page = getattr(client, operation)(**kwargs, **({"NextToken": token} if token else {}))
        for found in page.get(key, ()):
            if found.get(field) == value:
                return dict(found)
        token = page.get("NextToken")
        if not token:
            return None


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
    "AWS::ApiGatewayV2::Model",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
)


def _named_only_locally(app: App, refs: Mapping[str, str]) -> dict[str, str]:
    """``Ref`` values of resources nothing is created for, so environments may name them.

    A stage's Ref is its name, as is a custom domain's; routes, integrations, authorizers and deployments get stable
    ids shaped like AWS's; an IAM role's Ref is its name (no policy is enforced locally).
    """
    named: dict[str, str] = {}
    for res in app.resources.values():
        if res.type == "AWS::ApiGatewayV2::Stage":
            named[res.logical_id] = str(resolve(res.properties.get("StageName"), refs, app.parameters))
        elif res.type == "AWS::ApiGatewayV2::DomainName":
            # A custom domain's Ref is the name itself; the egress proxy answers it locally.
            named[res.logical_id] = str(resolve(res.properties.get("DomainName"), refs, app.parameters))
        elif res.type in _ID_ONLY:
            named[res.logical_id] = default_api_id(res.logical_id)[:7]
        elif res.type == "AWS::ApiGateway::ApiKey":
            # The key's id, as apiKeyId in events names it (its value is not what Ref gives).
            named[res.logical_id] = api_key_id(res.logical_id)
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
