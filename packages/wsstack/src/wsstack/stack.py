"""The whole local stack: emulator, resources, Lambda runtime and WebSocket gateways.

Start-up order follows the dependencies: the emulator first (resources need it; it boots in
its own process while the template is read), then the resources (function environments name
them), then one gateway per stage of each WebSocket API (functions need the ``@connections``
URLs), and last the functions themselves, which start lazily on first use and, with hot
reload, restart when their code changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import http.client
import json
import logging
import os
import re
import socket
import ssl
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from wsstack.egress import EgressProxy, EgressRoutes, execute_api_host, local_hosts, proxy_environment
from wsstack.emulator import LOCAL_CREDENTIALS, Emulator, PortInUse, aws_client, create_resources, forget_clients
from wsstack.gateway.core import Limits, default_api_id
from wsstack.gateway.server import Gateway
from wsstack.hosts import ALL_INTERFACES, DEFAULT_HOST, certificate_names, outward_address
from wsstack.memory import release_free_memory
from wsstack.model import App, Function
from wsstack.node import NODE_EGRESS_HOSTS, NODE_EGRESS_TLS, is_node
from wsstack.runtime import LambdaRuntime, UnsupportedRuntime
from wsstack.site import SiteServer
from wsstack.template import DEFAULT_REGION, TemplateError, load_app, read_json_file, resolve, resolve_stage_variables
from wsstack.tls import LocalCertificate
from wsstack.users import create_users, load_users

__all__ = [
    "ApiInfo",
    "LocalStack",
    "StackInfo",
    "StackMismatch",
    "api_mappings",
    "check_ports",
    "function_environment",
    "load_env_vars",
    "local_endpoints",
    "local_event",
    "prewarm_order",
    "read_state_file",
    "stack_answers",
]

log = logging.getLogger("wsstack")


@dataclass
class ApiInfo:
    """One served stage of one WebSocket API."""

    #: The API's logical id in the template.
    api: str
    name: str
    api_id: str
    stage: str
    websocket_url: str
    connections_url: str
    #: The same stage over TLS (``wss://{domainName}/{stage}``), whose certificate is the
    #: stack's ``ca_bundle``.
    secure_websocket_url: str = ""

    @property
    def domain_name(self) -> str:
        """``requestContext.domainName`` of this stage's events: its TLS ``host:port``."""
        return urlsplit(self.secure_websocket_url or self.websocket_url).netloc

    @property
    def management_url(self) -> str:
        """``http://host:port/<stage>``: an ``endpoint_url`` for ``apigatewaymanagementapi``."""
        return self.connections_url.removesuffix("/@connections")


@dataclass
class StackInfo:
    """What clients and scripts need to reach a running stack (written to the state file).

    The top-level URLs are those of the first API's first stage, in template order; ``apis``
    lists every stage of every API.
    """

    websocket_url: str
    connections_url: str
    aws_endpoint: str
    region: str
    user_pool_id: str | None
    user_pool_client_id: str | None
    #: What ``Ref`` gives for each resource by logical id: the physical names of created
    #: tables, pools and clients, and the local names and ids of the rest.
    resources: dict[str, str] = field(default_factory=dict)
    #: Every served stage of every WebSocket API, the first one first.
    apis: list[ApiInfo] = field(default_factory=list)
    #: Users created from the users file: username -> ``sub``.
    users: dict[str, str] = field(default_factory=dict)
    #: The certificate of the gateways' TLS ports, to trust when calling them over TLS
    #: (Lambdas get it as ``AWS_CA_BUNDLE``).
    ca_bundle: str = ""
    #: The address every server listens on (``--host``); the URLs above name 127.0.0.1
    #: when it is 0.0.0.0.
    host: str = DEFAULT_HOST
    #: The folder the emulator keeps its data in across restarts; empty: memory only.
    data_dir: str = ""
    #: The static site served beside the stack (``up --site``): its URL, empty when none.
    site_url: str = ""
    #: The process serving the stack.
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> StackInfo | None:
        """The stack a state file's JSON describes, or None when it does not describe one.

        Read defensively, as the file may come from another version of the stack: fields
        this version does not know are ignored, missing optional ones take their defaults,
        and a field of the wrong type makes the whole file unusable rather than half-read.
        """
        if not isinstance(data, dict):
            return None
        apis = data.get("apis", [])
        if not isinstance(apis, list):
            return None
        values: dict[str, Any] = {"apis": [api for api in map(_api_info, apis) if api is not None]}
        if len(values["apis"]) != len(apis):
            return None
        for name, kind in (("resources", dict), ("users", dict)):
            value = data.get(name, {})
            if not isinstance(value, kind) or not all(isinstance(v, str) for v in value.values()):
                return None
            values[name] = value
        for name in ("websocket_url", "connections_url", "aws_endpoint", "region", "ca_bundle", "site_url"):
            value = data.get(name, "")
            if not isinstance(value, str):
                return None
            values[name] = value
        for name in ("user_pool_id", "user_pool_client_id"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                return None
            values[name] = value
        if not values["aws_endpoint"] or not values["region"]:
            return None
        return cls(**values)


def _api_info(data: Any) -> ApiInfo | None:
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(ApiInfo)}
    values = {key: value for key, value in data.items() if key in known}
    if not all(isinstance(v, str) for v in values.values()):
        return None
    try:
        return ApiInfo(**values)
    except TypeError:  # a required field is missing
        return None


def read_state_file(path: Path) -> StackInfo | None:
    """The stack a state file (written by ``wsstack up``) describes; None when there is no
    such file or it does not describe a stack. Whether that stack is still up is
    :func:`stack_answers`'s question."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return StackInfo.from_dict(data)


#: A connection id no gateway ever issues (its ids are 16 characters ending in "=").
_PROBE_CONNECTION_ID = "wsstack-probe"


def _http_status(url: str, timeout: float) -> int | None:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


async def stack_answers(info: StackInfo, timeout: float = 1.0) -> bool:
    """Whether the stack ``info`` describes is up.

    Its AWS endpoint must answer HTTP, and the ``@connections`` API of every stage must
    answer a connection id it never issued with 410, as a gateway (and AWS) does: a stack
    that was killed, leaving its state file behind, or a port since taken by something
    else, does not pass.
    """
    loop = asyncio.get_running_loop()
    urls = [info.aws_endpoint, *(f"{api.connections_url}/{_PROBE_CONNECTION_ID}" for api in info.apis)]
    statuses = await asyncio.gather(*(loop.run_in_executor(None, _http_status, url, timeout) for url in urls))
    return statuses[0] is not None and all(status == 410 for status in statuses[1:])


def _mismatch(app: App, running: StackInfo) -> str | None:
    """How a running stack differs from what ``app`` needs, or None when it serves it."""
    created = ("AWS::DynamoDB::Table", "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient")
    missing = [r.logical_id for kind in created for r in app.of_type(kind) if r.logical_id not in running.resources]
    served = {(stage.api, stage.stage) for stage in running.apis}
    missing += [f"{api.logical_id} stage {stage}" for api in app.apis.values() for stage in api.stages
                if (api.logical_id, stage) not in served]
    if missing:
        return f"it has no {', '.join(missing)}"
    if any(stage.secure_websocket_url for stage in running.apis) and not Path(running.ca_bundle or ".").is_file():
        # Without it, https://{domainName}/{stage} cannot be trusted.
        return f"its gateways' certificate {running.ca_bundle or '(not named)'} cannot be read"
    # A table named from parameters (Items_${Suffix}) must be the one asked for.
    for table in app.of_type("AWS::DynamoDB::Table"):
        try:
            name = resolve(table.properties.get("TableName") or table.logical_id, {}, app.parameters,
                           region=running.region)
        except TemplateError:
            continue  # named after another resource: nothing to compare without creating it
        if name != running.resources[table.logical_id]:
            return f"its {table.logical_id} is {running.resources[table.logical_id]}, not {name}"
    return None


def _stream_arns(app: App, running: StackInfo) -> dict[str, str]:
    """``Fn::GetAtt Table.StreamArn`` of the running stack's tables (the state file lacks them)."""
    streamed = [r for r in app.of_type("AWS::DynamoDB::Table") if "StreamSpecification" in r.properties]
    if not streamed:
        return {}
    client = aws_client("dynamodb", running.aws_endpoint, running.region)
    arns = {}
    for table in streamed:
        name = running.resources[table.logical_id]
        try:
            described = client.describe_table(TableName=name)["Table"]
        except (BotoCoreError, ClientError) as exc:
            raise StackMismatch(f"its table {name} cannot be described ({exc})") from None
        if described.get("LatestStreamArn"):
            arns[f"{table.logical_id}.StreamArn"] = described["LatestStreamArn"]
    return arns


class StackMismatch(Exception):
    """A running stack does not serve the template asked for; the message says what it lacks."""


def load_env_vars(path: Path | None) -> dict[str, dict[str, str]]:
    """Read an environment-overrides file in ``sam local``'s ``--env-vars`` format.

    ``{"Parameters": {...for every function...}, "<FunctionLogicalId>": {...}}`` (a function's
    ``FunctionName`` works as a key too, below its logical id, as in ``sam local``). Values may
    use ``${...}`` placeholders resolved like ``Fn::Sub``, with the created resources and
    ``Local::AwsEndpoint``, ``Local::ConnectionsUrl`` and ``Local::WebSocketUrl`` (those of
    the first API's first stage).
    """
    if path is None:
        return {}
    data = read_json_file(path, "--env-vars file")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TemplateError(f"--env-vars file {path} must map function ids (or Parameters) to objects.")
    return data


def local_endpoints(stages: Sequence[ApiInfo], region: str = DEFAULT_REGION) -> list[tuple[re.Pattern[str], str]]:
    """Rewrites from the AWS URLs of the served stages to their local URLs.

    A template often builds its API's endpoints with ``Fn::Sub`` (``https://${Api}.execute-api.
    ${AWS::Region}.amazonaws.com/${Stage}`` for ``@connections``); resolved literally, that
    names a host that does not exist locally. Each stage's ``https://`` URL maps to its local
    ``@connections`` base and its ``wss://`` URL to its local WebSocket URL; the bare
    ``wss://`` host (``Fn::GetAtt Api.ApiEndpoint``) maps to the API's first stage.
    """
    rewrites: list[tuple[re.Pattern[str], str]] = []
    first_of_api: dict[str, ApiInfo] = {}
    for stage in stages:
        api_id = stage.api_id
        first_of_api.setdefault(api_id, stage)
        for scheme, local in (("https", stage.management_url), ("wss", stage.websocket_url)):
            host = f"{scheme}://{api_id}.execute-api.{region}.amazonaws.com"
            # Only whole path segments: stage "dev" must not match "/dev2".
            rewrites.append((re.compile(re.escape(f"{host}/{stage.stage}") + r"(?![\w-])"), local))
    for api_id, stage in first_of_api.items():
        host = f"wss://{api_id}.execute-api.{region}.amazonaws.com"
        rewrites.append((re.compile(re.escape(host) + r"(?![\w.-])"), _origin(stage.websocket_url)))
    return rewrites


def api_mappings(
    app: App, refs: Mapping[str, str], region: str = DEFAULT_REGION
) -> list[tuple[str, str, str, str]]:
    """The template's custom domains of its WebSocket APIs: ``(domain, api, stage, key)`` each.

    Read from ``AWS::ApiGatewayV2::ApiMapping`` (``DomainName``, ``ApiId``, ``Stage``,
    ``ApiMappingKey``), resolved with ``refs``; ``api`` is the API's logical id.

    Raises:
        TemplateError: a mapping names a stage its API does not declare; the message names it.
    """
    api_by_id = {str(refs.get(api.logical_id) or default_api_id(api.logical_id)): api for api in app.apis.values()}
    found = []
    for res in app.of_type("AWS::ApiGatewayV2::ApiMapping"):
        props = {key: resolve(value, refs, app.parameters, region=region, resources=app.resources)
                 for key, value in res.properties.items()}
        api = api_by_id.get(str(props.get("ApiId")))
        if api is None:
            log.warning("%s maps %s to an API that is not a WebSocket API of this template; "
                        "the local stack does not serve it", res.logical_id, props.get("DomainName"))
            continue
        stage = str(props.get("Stage", ""))
        if stage not in api.stages:
            raise TemplateError(
                f"{res.logical_id}: Stage {stage!r} is not a stage of {api.logical_id} "
                f"({', '.join(api.stages)}); name one of its AWS::ApiGatewayV2::Stage resources."
            )
        found.append((str(props.get("DomainName", "")), api.logical_id, stage, str(props.get("ApiMappingKey") or "")))
    return found


def _local_names(stages: Sequence[ApiInfo], aws_endpoint: str) -> dict[str, str]:
    """The ``Local::*`` names (see :func:`load_env_vars`) and each API's ``ApiEndpoint``."""
    names = {"Local::AwsEndpoint": aws_endpoint}
    for stage in stages:
        # Fn::GetAtt Api.ApiEndpoint is the API's wss:// origin, without a stage.
        names.setdefault(f"{stage.api}.ApiEndpoint", _origin(stage.websocket_url))
    if stages:
        first = stages[0]
        names.update({"Local::ConnectionsUrl": first.management_url, "Local::WebSocketUrl": first.websocket_url})
    return names


def local_event(event: Any, stage: ApiInfo, served: Sequence[ApiInfo]) -> tuple[Any, str | None]:
    """Point an event recorded elsewhere (on AWS, say) at a local stage.

    A function that answers through ``@connections`` builds the endpoint from the event,
    ``https://{domainName}/{stage}``, as on AWS; an event whose ``domainName`` is an AWS
    host would send it there. So an event whose ``requestContext.domainName`` is not one of
    the ``served`` stages gets ``stage``'s ``domainName``, ``stage`` and ``apiId`` (and an
    authorizer event's ``methodArn`` the same API id and stage). Events naming a served
    stage, and events without a ``domainName``, are left as they are.

    Returns:
        The event to invoke with (a new object when changed) and, when it was changed, one
        sentence saying what was replaced, for the log.
    """
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(context, dict) or not isinstance(context.get("domainName"), str):
        return event, None
    domain = context["domainName"]
    local_domains = {urlsplit(url).netloc for s in served for url in (s.websocket_url, s.secure_websocket_url) if url}
    if domain in local_domains:
        return event, None
    changed = {"domainName": stage.domain_name, "stage": stage.stage}
    if "apiId" in context:
        changed["apiId"] = stage.api_id
    event = {**event, "requestContext": {**context, **changed}}
    method_arn = event.get("methodArn")
    if isinstance(method_arn, str) and "apiId" in context:
        was = f":{context['apiId']}/{context.get('stage')}/"
        if was in method_arn:
            event["methodArn"] = method_arn.replace(was, f":{stage.api_id}/{stage.stage}/", 1)
    note = (
        f"the event names {domain}/{context.get('stage')}, which is not served here; it now names the local "
        f"gateway {stage.domain_name}/{stage.stage} (apiId {stage.api_id}), so that what the function sends to "
        "https://{domainName}/{stage} reaches it"
    )
    return event, note


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def function_environment(
    app: App,
    fn: Function,
    refs: Mapping[str, str],
    overrides: Mapping[str, Mapping[str, str]],
    *,
    aws_endpoint: str,
    region: str = DEFAULT_REGION,
    rewrites: Sequence[tuple[re.Pattern[str], str]] = (),
) -> dict[str, str]:
    """The environment a function sees locally.

    The template's variables with ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` resolved to local
    names, and URLs of the served API stages rewritten to their local URLs (see
    :func:`local_endpoints`); then, as ``sam local`` does, overrides apply only to variables
    the template declares; then what Lambda itself sets (region, credentials) plus
    ``AWS_ENDPOINT_URL``, which boto3 honours, so the code talks to the emulator without
    knowing it is local.

    Raises:
        TemplateError: a variable cannot be resolved locally; the message names the
            function and the variable.
    """
    def local(name: str, value: object) -> str:
        try:
            text = resolve(value, refs, app.parameters, region=region, resources=app.resources)
        except TemplateError as exc:
            raise TemplateError(f"{fn.logical_id}: environment variable {name}: {exc}") from None
        if not isinstance(text, str | int | float | bool):
            raise TemplateError(
                f"{fn.logical_id}: environment variable {name} must be a string; give it a plain value or !Sub."
            )
        text = str(text).lower() if isinstance(text, bool) else str(text)
        for pattern, replacement in rewrites:
            text = pattern.sub(replacement, text)
        return text

    env = {name: local(name, value) for name, value in fn.environment.items()}
    # sam local's order: a function's own scope wins over Parameters, its logical id over its name.
    for scope in dict.fromkeys(("Parameters", fn.name, fn.logical_id)):
        for key, value in (overrides.get(scope) or {}).items():
            if key in env:
                env[key] = local(key, {"Fn::Sub": str(value)})
    env.update(LOCAL_CREDENTIALS)
    env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region, AWS_ENDPOINT_URL=aws_endpoint)
    return env


#: Seconds between two checks for changed code, at most: an invocation checks first.
CODE_CHECK_INTERVAL = 0.25

def check_ports(host: str, ports: Mapping[str, int]) -> None:
    """Refuse, naming all of them at once, the ports that are taken; refuse a port given twice.

    ``ports`` maps each option to its port; 0 (a free port) is never taken. Each is tried
    as the servers will bind it (``SO_REUSEADDR``, so a port left in TIME_WAIT by a stack
    that just stopped still counts as free).

    Raises:
        PortInUse: one sentence naming each busy port with its option, and what to pass.
    """
    seen: dict[int, str] = {}
    for flag, port in ports.items():
        if port and port in seen:
            raise PortInUse(f"Port {port} is given to both {seen[port]} and {flag}; give each its own port, "
                            f"or {flag} 0 for a free one.")
        seen[port] = flag
    busy: list[str] = []
    flags: list[str] = []
    all_in_use = True
    for flag, port in ports.items():
        if not port:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                in_use = exc.errno == errno.EADDRINUSE
                busy.append(f"{port} ({flag})" if in_use else f"{port} ({flag}: {exc.strerror or exc})")
                flags.append(flag)
                all_in_use = all_in_use and in_use
    if not busy:
        return
    if len(busy) == 1:
        listed, it, free = f"Port {busy[0]} is", "it", "a free port"
    else:
        listed, it, free = f"Ports {', '.join(busy[:-1])} and {busy[-1]} are", "them", "free ports"
    raise PortInUse(
        f"{listed} {'in use' if all_in_use else 'not free'} on {host}; stop what uses {it}, or pass "
        f"{' '.join(f'{flag} 0' for flag in flags)} for {free}."
    )


def prewarm_order(app: App) -> tuple[list[str], list[str]]:
    """The functions worth a worker before the first client, in two lists: those a first
    message needs (each API's ``$connect`` path, authorizer first, and its ``$default`` route,
    which takes every frame no other route matches), then the other routes' functions."""
    first: list[str] = []
    routes: list[str] = []
    for api in app.apis.values():
        for key, route in api.routes.items():
            names = [route.authorizer.function if route.authorizer else None, route.function]
            (first if key in ("$connect", "$default") else routes).extend(n for n in names if n in app.functions)
    first = list(dict.fromkeys(first))
    return first, [name for name in dict.fromkeys(routes) if name not in first]


def _warn_unenforced(app: App) -> None:
    # IAM authorization needs SigV4 checks against IAM policies, which the local stack does
    # not have: it refuses unsigned upgrades but lets in any signature, and says so.
    for api in app.apis.values():
        for route in api.routes.values():
            if route.authorization_type == "AWS_IAM":
                log.warning(
                    "%s route %s uses AWS_IAM authorization: the local stack refuses unsigned upgrades "
                    "but does not verify signatures or IAM policies", api.logical_id, route.route_key,
                )


class LocalStack:
    """Runs one template locally.

    Every stage of every WebSocket API gets its own gateway, in template order; the first
    one takes ``port`` and ``tls_port``, the others free ports. Each serves WebSocket clients
    and ``@connections`` on its port, and both again over TLS on its TLS port, which events
    name as ``domainName``; the certificate is made for this run and trusted by every Lambda.
    Workers send HTTPS through an egress proxy (see :mod:`wsstack.egress`), which brings the
    template's API hosts (``<api id>.execute-api.<region>.amazonaws.com``, custom domains) to
    these gateways and lets every other host through.

    Args:
        template: path of the SAM/CloudFormation template.
        parameters: template parameter values.
        port: WebSocket and ``@connections`` port of the first API stage (0 = free port).
        tls_port: the same over TLS, the first stage's ``domainName`` (0 = free port).
        emulator_port: moto's port (0 = free port).
        host: the address the gateways and moto listen on: 127.0.0.1 (this machine only) or
            0.0.0.0 (every interface; URLs still name 127.0.0.1, see :mod:`wsstack.hosts`).
        env_vars: an overrides file in ``sam local``'s ``--env-vars`` format.
        users: a users file (see :mod:`wsstack.users`): users created in the template's
            pools before :meth:`start` returns.
        users_strict: refuse users of pools the template lacks (off for a default file).
        limits: gateway limits (AWS defaults when None).
        region: the region everything runs in.
        function_concurrency: most workers per function without ``ReservedConcurrentExecutions``;
            None: two per CPU (see :data:`~wsstack.runtime.DEFAULT_CONCURRENCY`).
        code_check_interval: hot reload: changed handler and domain code runs from the next
            invocation, checked at most once per this many seconds (see
            :class:`~wsstack.runtime.LambdaRuntime`); None turns it off, as on AWS, where a
            change needs a deployment.
        require_api: refuse a template without a WebSocket API (``up`` needs one; ``invoke``
            does not).
        running: a stack that is already up (see :func:`read_state_file` and
            :func:`stack_answers`): its emulator, tables, user pools and gateways serve the
            functions, which run in this process's own workers; nothing else is started.
            :meth:`start` raises :class:`StackMismatch` if it serves another template.
        data_dir: keep the emulator's tables, pools and users in this folder across
            restarts (one running stack per folder); None keeps them in memory only.
        fresh: discard the data saved in ``data_dir`` and start empty.
        site: a folder of static files to serve over HTTP beside the stack, with the
            stack's :class:`StackInfo` at ``/wsstack.json`` (see :mod:`wsstack.site`); None
            serves none.
        site_port: the site's port (0 = free port).
        worker_start: how Lambda workers start: ``fork``, ``spawn`` or ``auto`` (see
            :class:`~wsstack.runtime.LambdaRuntime`).
        idle_worker_timeout: seconds an idle worker is kept before it is stopped (scale-in);
            None keeps them.
        prewarm: start one worker per function of the ``$connect`` path and ``$default`` before
            :meth:`start` returns, and of every other route right after (see
            :func:`prewarm_order`), so the first messages are warm.
        node_ric: the folder holding ``node_modules/aws-lambda-ric`` for ``nodejs`` functions
            (see :func:`wsstack.node.node_ric_dir` for the default).
    """

    def __init__(
        self,
        template: Path,
        *,
        parameters: Mapping[str, str] | None = None,
        port: int = 0,
        tls_port: int = 0,
        emulator_port: int = 0,
        host: str = DEFAULT_HOST,
        env_vars: Path | None = None,
        users: Path | None = None,
        users_strict: bool = True,
        limits: Limits | None = None,
        region: str = DEFAULT_REGION,
        function_concurrency: int | None = None,
        code_check_interval: float | None = CODE_CHECK_INTERVAL,
        require_api: bool = True,
        running: StackInfo | None = None,
        data_dir: Path | None = None,
        fresh: bool = False,
        site: Path | None = None,
        site_port: int = 0,
        worker_start: str = "auto",
        idle_worker_timeout: float | None = None,
        prewarm: bool = False,
        node_ric: str | Path | None = None,
    ) -> None:
        self._prewarm = prewarm
        self._prewarming: asyncio.Future[Any] | None = None
        self.template = Path(template)
        self.parameters = dict(parameters or {})
        self.region = region
        self._ports = (port, tls_port)
        self.host = host
        self._env_vars = env_vars
        self._users = users
        self._users_strict = users_strict
        self._limits = limits
        self._require_api = require_api
        self._running = running
        self._emulator_port = emulator_port
        self.emulator = Emulator(port=emulator_port, host=host, data_dir=data_dir, fresh=fresh)
        self.runtime = LambdaRuntime(
            default_concurrency=function_concurrency,
            code_check_interval=code_check_interval,
            worker_start=worker_start,
            idle_timeout=idle_worker_timeout,
            node_ric=node_ric,
        )
        self.gateways: list[Gateway] = []
        self.egress: EgressProxy | None = None
        self.site = SiteServer(site, self._info_json, host=host, port=site_port) if site is not None else None
        self._certificate_dir: tempfile.TemporaryDirectory[str] | None = None
        self.app: App | None = None
        self.info: StackInfo | None = None

    async def start(self) -> StackInfo:
        """Bring everything up; on failure, tear down what was started and re-raise."""
        try:
            return await self._start()
        except BaseException:
            # A stack that did not start leaves the saved data as it found it.
            await self._stop(save=False)
            raise

    async def _start(self) -> StackInfo:
        if self._running is not None:
            return await self._attach(self._running)
        loop = asyncio.get_running_loop()
        # What a running stack may hold is checked before anything starts: every port in use
        # named at once rather than one per attempt, then the data folder.
        ports = {"--port": self._ports[0], "--tls-port": self._ports[1], "--emulator-port": self._emulator_port}
        if self.site is not None:
            ports["--site-port"] = self.site.port
        check_ports(self.host, ports)
        self.emulator.claim()
        # moto takes about as long to boot in its own process as the template takes to read
        # and translate here, so the two overlap; the emulator is always needed.
        emulator = loop.run_in_executor(None, functools.partial(self.emulator.start, announce=False))
        try:
            app = self.app = load_app(self.template, self.parameters, region=self.region)
            self._check_runtimes(app)
            # The fork server imports for most of a second: alongside the emulator's start.
            self.runtime.prepare([fn.code_dir for fn in app.functions.values() if not is_node(fn.runtime)])
            if self._require_api and not app.apis:
                raise TemplateError(
                    f"{self.template} declares no WebSocket API; add an AWS::Serverless::WebSocketApi "
                    "or an AWS::ApiGatewayV2::Api with ProtocolType: WEBSOCKET."
                )
            _warn_unenforced(app)
            overrides = load_env_vars(self._env_vars)
            pools = [r.logical_id for r in app.of_type("AWS::Cognito::UserPool")]
            seed_users = load_users(self._users, pools, strict=self._users_strict)
        except BaseException:
            # Let the emulator finish starting so that stop() finds its process and ends it.
            with contextlib.suppress(Exception):
                await emulator
            raise
        endpoint = await emulator
        self.emulator.announce()
        refs = await loop.run_in_executor(
            None, lambda: create_resources(app, endpoint_url=endpoint, region=self.region)
        )
        users = {}
        if seed_users:
            users = await loop.run_in_executor(None, lambda: create_users(
                aws_client("cognito-idp", endpoint, self.region), seed_users, {pool: refs[pool] for pool in pools}
            ))
        apis: list[ApiInfo] = []
        domains = api_mappings(app, refs, self.region)
        # The hosts the egress proxy answers for the template's APIs, so the workers' TLS
        # verification passes there too.
        api_hosts = [execute_api_host(refs.get(api.logical_id) or default_api_id(api.logical_id), self.region)
                     for api in app.apis.values()]
        certificate = self._certificate([*api_hosts, *(d[0] for d in domains)]) if app.apis else None
        tls = certificate.server_context() if certificate else None
        for api in app.apis.values():
            for stage in api.stages:
                port, tls_port = (0, 0) if self.gateways else self._ports
                gateway = Gateway(
                    resolve_stage_variables(api, refs, app.parameters, region=self.region, resources=app.resources),
                    stage, self.runtime.submit, host=self.host, port=port, tls=tls, tls_port=tls_port,
                    limits=self._limits, api_id=refs.get(api.logical_id), region=self.region,
                )
                # Listed before it starts, so stop() also closes a half-started gateway.
                self.gateways.append(gateway)
                try:
                    await gateway.start()
                except OSError as exc:
                    raise PortInUse(
                        f"The gateway for {api.logical_id} stage {stage} could not listen on {self.host} "
                        f"(port {port}, TLS port {tls_port}): {exc.strerror or exc}; "
                        "pass --port 0 and --tls-port 0 for free ports."
                    ) from None
                apis.append(ApiInfo(
                    api=api.logical_id, name=api.name, api_id=gateway.context.api_id, stage=stage,
                    websocket_url=gateway.url, connections_url=f"{gateway.management_url}/@connections",
                    secure_websocket_url=gateway.secure_url,
                ))
        proxy_url = await self._start_egress(apis, domains, tls)
        self._add_functions(app, refs, apis, overrides, endpoint, str(certificate.cert_path) if certificate else None,
                            proxy_url)
        await self.runtime.start()
        if self._prewarm:
            # The $connect path and $default before ready, so the first handshake and message
            # are warm; the other routes' functions right after, while a client opens.
            first, routes = prewarm_order(app)
            await self.runtime.prewarm(first)
            self._prewarming = asyncio.ensure_future(self.runtime.prewarm(routes))
        clients = [r.logical_id for r in app.of_type("AWS::Cognito::UserPoolClient")]
        self.info = StackInfo(
            websocket_url=apis[0].websocket_url if apis else "",
            connections_url=apis[0].connections_url if apis else "",
            aws_endpoint=endpoint,
            region=self.region,
            user_pool_id=refs[pools[0]] if pools else None,
            user_pool_client_id=refs[clients[0]] if clients else None,
            resources={k: v for k, v in refs.items() if k in app.resources},
            apis=apis,
            users=users,
            ca_bundle=str(certificate.cert_path) if certificate else "",
            host=self.host,
            data_dir=str(self.emulator.data_dir) if self.emulator.data_dir is not None else "",
        )
        if self.site is not None:
            try:
                await self.site.start()
            except OSError as exc:
                raise PortInUse(
                    f"The site could not listen on {self.host} port {self.site.port}: {exc.strerror or exc}; "
                    "pass --site-port 0 for a free port."
                ) from None
            self.info.site_url = self.site.url
        # Start-up's AWS clients are done with; the heap they and the template took goes back.
        forget_clients()
        started = time.perf_counter()
        release_free_memory()
        log.debug("start-up's memory released in %.1f ms", (time.perf_counter() - started) * 1000)
        return self.info

    def _info_json(self) -> str:
        return self.info.to_json() if self.info is not None else "{}"

    async def _attach(self, running: StackInfo) -> StackInfo:
        self.region = running.region
        app = self.app = load_app(self.template, self.parameters, region=self.region)
        self._check_runtimes(app)
        _warn_unenforced(app)
        mismatch = _mismatch(app, running)
        if mismatch:
            raise StackMismatch(f"{mismatch}, so it serves another template or other parameters than {self.template}")
        overrides = load_env_vars(self._env_vars)
        # Function names as this template names them (a stack started by an older version
        # may have recorded logical ids).
        refs = {**running.resources, **{fn.logical_id: fn.name for fn in app.functions.values()}}
        refs.update(await asyncio.get_running_loop().run_in_executor(None, _stream_arns, app, running))
        # The running stack's certificate and key (its own temporary folder) answer its API
        # hosts here too; without them, those hosts are reached only where they point.
        tls = None
        key = Path(running.ca_bundle).with_name("gateway-key.pem") if running.ca_bundle else None
        if key is not None and key.is_file():
            with contextlib.suppress(OSError, ssl.SSLError):
                tls = LocalCertificate(Path(running.ca_bundle), key).server_context()
        proxy_url = await self._start_egress(running.apis, api_mappings(app, refs, self.region), tls)
        self._add_functions(
            app, refs, running.apis, overrides, running.aws_endpoint, running.ca_bundle or None, proxy_url
        )
        await self.runtime.start()
        self.info = running
        return running

    async def _start_egress(
        self, stages: Sequence[ApiInfo], domains: Sequence[tuple[str, str, str, str]], tls: ssl.SSLContext | None
    ) -> str | None:
        """Start the workers' egress proxy (see :mod:`wsstack.egress`); its URL, None without APIs."""
        if not stages:
            return None
        plain = [(s.api, s.api_id, s.stage, urlsplit(s.websocket_url).port or 0) for s in stages]
        # The gateways' URLs name the address that reaches them (127.0.0.1 when bound to 0.0.0.0).
        gateway_host = urlsplit(stages[0].websocket_url).hostname or DEFAULT_HOST
        self.egress = EgressProxy(
            # The stack's own HTTPS_PROXY/NO_PROXY (the developer's) carry the other hosts on.
            EgressRoutes.from_environment(local_hosts(plain, domains, self.region), os.environ), tls,
            local_host=gateway_host,
        )
        await self.egress.start()
        return self.egress.url

    def _check_runtimes(self, app: App) -> None:
        """Stop before anything starts if a function's runtime cannot run here (no ``node``,
        or no runtime interface client for it): one sentence saying what to install."""
        for fn in app.functions.values():
            try:
                self.runtime.check_function(fn)
            except UnsupportedRuntime as exc:
                raise TemplateError(str(exc)) from None

    def _add_functions(
        self,
        app: App,
        refs: Mapping[str, str],
        stages: Sequence[ApiInfo],
        overrides: Mapping[str, Mapping[str, str]],
        aws_endpoint: str,
        ca_bundle: str | None,
        proxy_url: str | None = None,
    ) -> None:
        names = {**refs, **_local_names(stages, aws_endpoint)}
        rewrites = local_endpoints(stages, self.region)
        for fn in app.functions.values():
            env = function_environment(app, fn, names, overrides,
                                       aws_endpoint=aws_endpoint, region=self.region, rewrites=rewrites)
            if ca_bundle is not None:
                # boto3 then trusts https://{domainName}/{stage} and the template's API hosts
                # (see wsstack.egress), as it trusts AWS's. Only this certificate: with the public
                # roots added, every new boto3 client took about 20 ms more to load them.
                env.setdefault("AWS_CA_BUNDLE", ca_bundle)
                if is_node(fn.runtime):
                    # Node's own variable for the same: every TLS connection of the process
                    # (https, fetch, and so the AWS SDK for JavaScript) adds it to the public roots.
                    env.setdefault("NODE_EXTRA_CA_CERTS", ca_bundle)
            if proxy_url is not None:
                # HTTPS to the template's API hosts and custom domains comes back here (see
                # wsstack.egress); the rest goes where it points. Fork and spawn alike start
                # from this environment.
                env.update(proxy_environment(proxy_url, fn.environment))
                if is_node(fn.runtime) and self.egress is not None and self.egress.direct_address:
                    # Node ignores HTTPS_PROXY: its bootstrap sends TLS connections to these
                    # hosts to the proxy's direct entrance instead (see wsstack.node).
                    env[NODE_EGRESS_TLS] = self.egress.direct_address
                    env[NODE_EGRESS_HOSTS] = ",".join(sorted(self.egress.routes.hosts))
            self.runtime.add_function(fn, env)

    def find_function(self, name: str) -> Function | None:
        """The function with this logical id or this name (``FunctionName``), once started."""
        functions = self.app.functions if self.app is not None else {}
        found = functions.get(name)
        return found or next((fn for fn in functions.values() if fn.name == name), None)

    def stage_of(self, function: str) -> ApiInfo | None:
        """The served stage whose events ``function`` (a logical id) gets: the first stage of
        the first API with a route or authorizer that runs it, else the first stage served."""
        if self.app is None or self.info is None or not self.info.apis:
            return None
        for api in self.app.apis.values():
            if any(function in (route.function, route.authorizer and route.authorizer.function)
                   for route in api.routes.values()):
                return next((stage for stage in self.info.apis if stage.api == api.logical_id), self.info.apis[0])
        return self.info.apis[0]

    def _certificate(self, api_hosts: Sequence[str] = ()) -> LocalCertificate:
        self._certificate_dir = tempfile.TemporaryDirectory(prefix="wsstack-tls-")
        # Workers and local clients name 127.0.0.1; other devices, the address they reach.
        outward = outward_address() if self.host == ALL_INTERFACES else None
        names = [*certificate_names(self.host, outward), *api_hosts]
        return LocalCertificate.create(Path(self._certificate_dir.name), names)

    async def stop(self) -> None:
        """Close sockets (running ``$disconnect``), stop workers, then the emulator, which
        writes its data (if it keeps any) once the last request to it is answered."""
        await self._stop(save=True)

    async def _stop(self, *, save: bool) -> None:
        if self.site is not None:
            await self.site.stop()
        if self._prewarming is not None:
            self._prewarming.cancel()
        for gateway in reversed(self.gateways):
            await gateway.stop()
        self.gateways.clear()
        if self.egress is not None:
            await self.egress.stop()
            self.egress = None
        await self.runtime.stop()
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self.emulator.stop, save=save))
        if self._certificate_dir is not None:
            self._certificate_dir.cleanup()
            self._certificate_dir = None
