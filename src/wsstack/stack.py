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
import json
import logging
import os
import re
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wsstack.emulator import LOCAL_CREDENTIALS, Emulator, PortInUse, aws_client, create_resources
from wsstack.gateway.core import Limits
from wsstack.gateway.server import Gateway
from wsstack.model import App, Function
from wsstack.runtime import LambdaRuntime
from wsstack.template import DEFAULT_REGION, TemplateError, load_app, read_json_file, resolve
from wsstack.tls import LocalCertificate
from wsstack.users import create_users, load_users

__all__ = [
    "ApiInfo", "LocalStack", "StackInfo", "check_ports", "function_environment", "load_env_vars", "local_endpoints",
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
    #: The folder the emulator keeps its data in across restarts; empty: memory only.
    data_dir: str = ""
    #: The process serving the stack.
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def load_env_vars(path: Path | None) -> dict[str, dict[str, str]]:
    """Read an environment-overrides file in ``sam local``'s ``--env-vars`` format.

    ``{"Parameters": {...for every function...}, "<FunctionLogicalId>": {...}}``. Values may
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


def local_endpoints(gateways: Sequence[Gateway], region: str = DEFAULT_REGION) -> list[tuple[re.Pattern[str], str]]:
    """Rewrites from the AWS URLs of the served stages to their local URLs.

    A template often builds its API's endpoints with ``Fn::Sub`` (``https://${Api}.execute-api.
    ${AWS::Region}.amazonaws.com/${Stage}`` for ``@connections``); resolved literally, that
    names a host that does not exist locally. Each stage's ``https://`` URL maps to its local
    ``@connections`` base and its ``wss://`` URL to its local WebSocket URL; the bare
    ``wss://`` host (``Fn::GetAtt Api.ApiEndpoint``) maps to the API's first stage.
    """
    rewrites: list[tuple[re.Pattern[str], str]] = []
    first_of_api: dict[str, Gateway] = {}
    for gateway in gateways:
        api_id = gateway.context.api_id
        first_of_api.setdefault(api_id, gateway)
        for scheme, local in (("https", gateway.management_url), ("wss", gateway.url)):
            host = f"{scheme}://{api_id}.execute-api.{region}.amazonaws.com"
            # Only whole path segments: stage "dev" must not match "/dev2".
            rewrites.append((re.compile(re.escape(f"{host}/{gateway.stage}") + r"(?![\w-])"), local))
    for api_id, gateway in first_of_api.items():
        host = f"wss://{api_id}.execute-api.{region}.amazonaws.com"
        rewrites.append((re.compile(re.escape(host) + r"(?![\w.-])"), _origin(gateway.url)))
    return rewrites


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
    for scope in ("Parameters", fn.logical_id):
        for key, value in (overrides.get(scope) or {}).items():
            if key in env:
                env[key] = local(key, {"Fn::Sub": str(value)})
    env.update(LOCAL_CREDENTIALS)
    env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region, AWS_ENDPOINT_URL=aws_endpoint)
    return env


#: Seconds between two checks for changed code, at most: an invocation checks first.
CODE_CHECK_INTERVAL = 0.25

#: Where the gateways and the emulator listen.
LISTEN_HOST = "127.0.0.1"


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

    Args:
        template: path of the SAM/CloudFormation template.
        parameters: template parameter values.
        port: WebSocket and ``@connections`` port of the first API stage (0 = free port).
        tls_port: the same over TLS, the first stage's ``domainName`` (0 = free port).
        emulator_port: moto's port (0 = free port).
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
        data_dir: keep the emulator's tables, pools and users in this folder across
            restarts (one running stack per folder); None keeps them in memory only.
        fresh: discard the data saved in ``data_dir`` and start empty.
    """

    def __init__(
        self,
        template: Path,
        *,
        parameters: Mapping[str, str] | None = None,
        port: int = 0,
        tls_port: int = 0,
        emulator_port: int = 0,
        env_vars: Path | None = None,
        users: Path | None = None,
        users_strict: bool = True,
        limits: Limits | None = None,
        region: str = DEFAULT_REGION,
        function_concurrency: int | None = None,
        code_check_interval: float | None = CODE_CHECK_INTERVAL,
        require_api: bool = True,
        data_dir: Path | None = None,
        fresh: bool = False,
    ) -> None:
        self.template = Path(template)
        self.parameters = dict(parameters or {})
        self.region = region
        self._ports = (port, tls_port)
        self._env_vars = env_vars
        self._users = users
        self._users_strict = users_strict
        self._limits = limits
        self._require_api = require_api
        self._emulator_port = emulator_port
        self.emulator = Emulator(port=emulator_port, data_dir=data_dir, fresh=fresh)
        self.runtime = LambdaRuntime(
            default_concurrency=function_concurrency,
            code_check_interval=code_check_interval,
        )
        self.gateways: list[Gateway] = []
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
        loop = asyncio.get_running_loop()
        # What a running stack may hold is checked before anything starts: every port in use
        # named at once rather than one per attempt, then the data folder.
        check_ports(LISTEN_HOST, {"--port": self._ports[0], "--tls-port": self._ports[1],
                                  "--emulator-port": self._emulator_port})
        self.emulator.claim()
        # moto takes about as long to boot in its own process as the template takes to read
        # and translate here, so the two overlap; the emulator is always needed.
        emulator = loop.run_in_executor(None, functools.partial(self.emulator.start, announce=False))
        try:
            app = self.app = load_app(self.template, self.parameters, region=self.region)
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
        local: dict[str, str] = {"Local::AwsEndpoint": endpoint}
        certificate = self._certificate() if app.apis else None
        tls = certificate.server_context() if certificate else None
        for api in app.apis.values():
            for stage in api.stages:
                port, tls_port = (0, 0) if self.gateways else self._ports
                gateway = Gateway(
                    api, stage, self.runtime.submit, port=port, tls=tls, tls_port=tls_port,
                    limits=self._limits, api_id=refs.get(api.logical_id), region=self.region,
                )
                # Listed before it starts, so stop() also closes a half-started gateway.
                self.gateways.append(gateway)
                try:
                    await gateway.start()
                except OSError as exc:
                    raise PortInUse(
                        f"The gateway for {api.logical_id} stage {stage} could not listen on 127.0.0.1 "
                        f"(port {port}, TLS port {tls_port}): {exc.strerror or exc}; "
                        "pass --port 0 and --tls-port 0 for free ports."
                    ) from None
                apis.append(ApiInfo(
                    api=api.logical_id, name=api.name, api_id=gateway.context.api_id, stage=stage,
                    websocket_url=gateway.url, connections_url=f"{gateway.management_url}/@connections",
                    secure_websocket_url=gateway.secure_url,
                ))
                # Fn::GetAtt Api.ApiEndpoint is the API's wss:// origin, without a stage.
                local.setdefault(f"{api.logical_id}.ApiEndpoint", _origin(gateway.url))
        if self.gateways:
            first = self.gateways[0]
            local.update({"Local::ConnectionsUrl": first.management_url, "Local::WebSocketUrl": first.url})
        rewrites = local_endpoints(self.gateways, self.region)
        for fn in app.functions.values():
            env = function_environment(app, fn, {**refs, **local}, overrides,
                                       aws_endpoint=endpoint, region=self.region, rewrites=rewrites)
            if certificate is not None:
                # boto3 then trusts https://{domainName}/{stage}, as it trusts AWS's.
                env.setdefault("AWS_CA_BUNDLE", str(certificate.cert_path))
            self.runtime.add_function(fn, env)
        await self.runtime.start()
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
            data_dir=str(self.emulator.data_dir) if self.emulator.data_dir is not None else "",
        )
        return self.info

    def _certificate(self) -> LocalCertificate:
        self._certificate_dir = tempfile.TemporaryDirectory(prefix="wsstack-tls-")
        return LocalCertificate.create(Path(self._certificate_dir.name), ["127.0.0.1", "localhost"])

    async def stop(self) -> None:
        """Close sockets (running ``$disconnect``), stop workers, then the emulator, which
        writes its data (if it keeps any) once the last request to it is answered."""
        await self._stop(save=True)

    async def _stop(self, *, save: bool) -> None:
        for gateway in reversed(self.gateways):
            await gateway.stop()
        self.gateways.clear()
        await self.runtime.stop()
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self.emulator.stop, save=save))
        if self._certificate_dir is not None:
            self._certificate_dir.cleanup()
            self._certificate_dir = None
