"""The whole local stack: emulator, resources, Lambda runtime and WebSocket gateways.

Start-up order follows the dependencies: the emulator first (resources need it), then the
resources (function environments name them), then the gateways (functions need the
``@connections`` URL), and last the functions themselves, which start lazily on first use.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wsstack.emulator import LOCAL_CREDENTIALS, Emulator, create_resources
from wsstack.gateway.core import Limits
from wsstack.gateway.server import Gateway
from wsstack.model import App, Function
from wsstack.runtime import LambdaRuntime
from wsstack.template import DEFAULT_REGION, TemplateError, load_app, resolve

__all__ = ["LocalStack", "StackInfo", "function_environment", "load_env_vars"]

log = logging.getLogger("wsstack")


@dataclass
class StackInfo:
    """What clients and scripts need to reach a running stack (written to the state file)."""

    websocket_url: str
    connections_url: str
    aws_endpoint: str
    region: str
    user_pool_id: str | None
    user_pool_client_id: str | None
    #: Physical names of the created resources by logical id (tables, pool, client).
    resources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def load_env_vars(path: Path | None) -> dict[str, dict[str, str]]:
    """Read an environment-overrides file in ``sam local``'s ``--env-vars`` format.

    ``{"Parameters": {...for every function...}, "<FunctionLogicalId>": {...}}``. Values may
    use ``${...}`` placeholders resolved like ``Fn::Sub``, with the created resources and
    ``Local::AwsEndpoint``, ``Local::ConnectionsUrl`` and ``Local::WebSocketUrl``.
    """
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"--env-vars file {path} does not exist.") from None
    except ValueError as exc:
        raise TemplateError(f"--env-vars file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TemplateError(f"--env-vars file {path} must map function ids (or Parameters) to objects.")
    return data


def function_environment(
    app: App,
    fn: Function,
    refs: Mapping[str, str],
    overrides: Mapping[str, Mapping[str, str]],
    *,
    aws_endpoint: str,
    region: str = DEFAULT_REGION,
) -> dict[str, str]:
    """The environment a function sees locally.

    The template's variables with Refs resolved to local names; then, as ``sam local`` does,
    overrides apply only to variables the template declares; then what Lambda itself sets
    (region, credentials) plus ``AWS_ENDPOINT_URL``, which boto3 honours, so the code talks
    to the emulator without knowing it is local.
    """
    env = {k: str(v) for k, v in resolve(fn.environment, refs, app.parameters, region=region,
                                          resources=app.resources).items()}
    for scope in ("Parameters", fn.logical_id):
        for key, value in (overrides.get(scope) or {}).items():
            if key in env:
                env[key] = str(resolve({"Fn::Sub": str(value)}, refs, app.parameters, region=region))
    env.update(LOCAL_CREDENTIALS)
    env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region, AWS_ENDPOINT_URL=aws_endpoint)
    return env


class LocalStack:
    """Runs one template locally.

    Args:
        template: path of the SAM/CloudFormation template.
        parameters: template parameter values.
        port: WebSocket port of the first API (0 = free port); further APIs take free ports.
        management_port: ``@connections`` port of the first API (0 = free port).
        emulator_port: moto's port (0 = free port).
        env_vars: an overrides file in ``sam local``'s ``--env-vars`` format.
        limits: gateway limits (AWS defaults when None).
    """

    def __init__(
        self,
        template: Path,
        *,
        parameters: Mapping[str, str] | None = None,
        port: int = 0,
        management_port: int = 0,
        emulator_port: int = 0,
        env_vars: Path | None = None,
        limits: Limits | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.template = Path(template)
        self.parameters = dict(parameters or {})
        self.region = region
        self._ports = (port, management_port)
        self._env_vars = env_vars
        self._limits = limits
        self.emulator = Emulator(port=emulator_port)
        self.runtime = LambdaRuntime()
        self.gateways: list[Gateway] = []
        self.app: App | None = None
        self.info: StackInfo | None = None

    async def start(self) -> StackInfo:
        """Bring everything up; on failure, tear down what was started and re-raise."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> StackInfo:
        app = self.app = load_app(self.template, self.parameters, region=self.region)
        overrides = load_env_vars(self._env_vars)
        loop = asyncio.get_running_loop()
        endpoint = await loop.run_in_executor(None, self.emulator.start)
        refs = await loop.run_in_executor(
            None, lambda: create_resources(app, endpoint_url=endpoint, region=self.region)
        )
        if not app.apis:
            raise TemplateError("The template declares no WebSocket API (AWS::ApiGatewayV2::Api, WEBSOCKET).")
        for index, api in enumerate(app.apis.values()):
            port, mport = self._ports if index == 0 else (0, 0)
            gateway = Gateway(
                api, api.stages[0], self.runtime.invoke, port=port, management_port=mport,
                limits=self._limits, api_id=refs.get(api.logical_id), region=self.region,
            )
            await gateway.start()
            self.gateways.append(gateway)
        first = self.gateways[0]
        local = {
            "Local::AwsEndpoint": endpoint,
            "Local::ConnectionsUrl": first.management_url,
            "Local::WebSocketUrl": first.url,
        }
        for fn in app.functions.values():
            env = function_environment(app, fn, {**refs, **local}, overrides,
                                       aws_endpoint=endpoint, region=self.region)
            self.runtime.add_function(fn, env)
        await self.runtime.start()
        pools = [r.logical_id for r in app.of_type("AWS::Cognito::UserPool")]
        clients = [r.logical_id for r in app.of_type("AWS::Cognito::UserPoolClient")]
        self.info = StackInfo(
            websocket_url=first.url,
            connections_url=f"{first.management_url}/@connections",
            aws_endpoint=endpoint,
            region=self.region,
            user_pool_id=refs[pools[0]] if pools else None,
            user_pool_client_id=refs[clients[0]] if clients else None,
            resources={k: v for k, v in refs.items() if k in app.resources},
        )
        return self.info

    async def stop(self) -> None:
        """Close sockets (running ``$disconnect``), stop workers, then the emulator."""
        for gateway in reversed(self.gateways):
            await gateway.stop()
        self.gateways.clear()
        await self.runtime.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.emulator.stop)
