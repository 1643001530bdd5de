"""The application model the local stack runs, read from a SAM/CloudFormation template.

Every part of the stack (emulator, runtime, gateway) works from these records, so the
template stays the one source of truth. Values that depend on resources created at start-up
(a user pool id, say) stay as CloudFormation intrinsics here and are resolved later by
:func:`wsstack.template.resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ApiKey",
    "App",
    "Authorizer",
    "Function",
    "InvocationResult",
    "Resource",
    "Route",
    "StageSettings",
    "Throttle",
    "WebSocketApi",
]


@dataclass(frozen=True)
class Function:
    """An ``AWS::Lambda::Function`` (SAM functions arrive already translated)."""

    logical_id: str
    handler: str
    runtime: str
    code_dir: Path
    timeout: int = 3
    memory_mb: int = 128
    #: Environment variables as written in the template (may hold intrinsics).
    environment: dict[str, Any] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    #: The template's ``FunctionName``, resolved; None when the template sets none.
    function_name: str | None = None

    @property
    def name(self) -> str:
        """The function's name as Lambda knows it: ``FunctionName`` where the template sets
        one, else the logical id (CloudFormation would generate a name; the logical id is the
        local stand-in). ``Ref`` gives it, and the function sees it as ``AWS_LAMBDA_FUNCTION_NAME``."""
        return self.function_name or self.logical_id


@dataclass(frozen=True)
class Authorizer:
    """A REQUEST Lambda authorizer (``AWS::ApiGatewayV2::Authorizer``)."""

    logical_id: str
    function: str  # logical id of the Lambda function
    #: e.g. ``("route.request.querystring.token",)``; empty means no pre-check.
    identity_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """One route of a WebSocket API and the Lambda it proxies to."""

    route_key: str
    function: str | None  # logical id of the Lambda function, None for non-Lambda targets
    authorization_type: str = "NONE"  # NONE | CUSTOM | AWS_IAM
    authorizer: Authorizer | None = None
    #: True when the route has a ``$default`` route response: the Lambda's return value
    #: is then sent back to the client (a two-way route).
    two_way: bool = False
    #: The integration's ``TimeoutInMillis`` in seconds; None for the stage's default (29 s).
    timeout: float | None = None
    #: ``ApiKeyRequired``: AWS accepts it on ``$connect`` only for WebSocket APIs.
    api_key_required: bool = False
    #: ``ModelSelectionExpression``, evaluated on the body to pick a key of ``request_models``.
    model_selection_expression: str | None = None
    #: ``RequestModels`` resolved to their schemas: selection key -> JSON schema (draft 4).
    request_models: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Throttle:
    """A route's throttling target (``ThrottlingBurstLimit``, ``ThrottlingRateLimit``).

    None means the template sets no value: the stage does not limit that dimension locally
    (AWS's account-level limits are not reproduced).
    """

    burst_limit: int | None = None
    rate_limit: float | None = None


@dataclass(frozen=True)
class StageSettings:
    """What an ``AWS::ApiGatewayV2::Stage`` sets that the gateway acts on."""

    #: ``StageVariables``: as written in the template until the stack resolves them to strings
    #: (:func:`wsstack.template.resolve_stage_variables`).
    variables: dict[str, Any] = field(default_factory=dict)
    #: ``DefaultRouteSettings``' throttling: each route's own bucket unless overridden.
    default_throttle: Throttle = field(default_factory=Throttle)
    #: ``RouteSettings``' throttling by route key.
    route_throttles: dict[str, Throttle] = field(default_factory=dict)

    def throttle(self, route_key: str) -> Throttle:
        """The throttling target of one route: its ``RouteSettings``, else the default."""
        return self.route_throttles.get(route_key, self.default_throttle)


@dataclass(frozen=True)
class ApiKey:
    """An ``AWS::ApiGateway::ApiKey`` that a usage plan attaches to an API stage."""

    logical_id: str
    #: ``apiKeyId`` in events: the key's id (locally derived from its logical id).
    key_id: str
    #: The key itself: the template's ``Value``, else one generated from the logical id.
    value: str
    enabled: bool = True
    #: True when the template sets no ``Value`` (the stack then prints the generated one).
    generated: bool = False


@dataclass(frozen=True)
class WebSocketApi:
    """An ``AWS::ApiGatewayV2::Api`` with ``ProtocolType: WEBSOCKET``.

    SAM's ``AWS::Serverless::WebSocketApi`` arrives translated into one, with its routes.
    """

    logical_id: str
    name: str
    route_selection_expression: str
    routes: dict[str, Route]
    stages: tuple[str, ...]
    #: Per stage name: stage variables and throttling.
    stage_settings: dict[str, StageSettings] = field(default_factory=dict)
    #: ``ApiKeySelectionExpression``: ``$request.header.x-api-key`` (AWS's default) or
    #: ``$context.authorizer.usageIdentifierKey``.
    api_key_selection_expression: str = "$request.header.x-api-key"
    #: Per stage name: the API keys of the usage plans naming that stage.
    api_keys: dict[str, tuple[ApiKey, ...]] = field(default_factory=dict)

    def settings(self, stage: str) -> StageSettings:
        """A stage's settings (none set: no variables, no throttling)."""
        return self.stage_settings.get(stage) or StageSettings()


@dataclass(frozen=True)
class Resource:
    """Any other resource, kept as its translated CloudFormation type and properties."""

    logical_id: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class App:
    """Everything the local stack needs from one template."""

    functions: dict[str, Function]
    apis: dict[str, WebSocketApi]
    #: DynamoDB tables, Cognito pools and clients, and the rest, by logical id.
    resources: dict[str, Resource]
    parameters: dict[str, str]
    outputs: dict[str, Any]

    def of_type(self, type_name: str) -> list[Resource]:
        """Resources of one CloudFormation type, in template order."""
        return [r for r in self.resources.values() if r.type == type_name]


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of one Lambda invocation, as the local runtime reports it."""

    request_id: str
    #: The handler's return value, decoded from JSON, when it succeeded.
    payload: Any = None
    #: On failure, AWS's error shape: ``{"errorMessage", "errorType", "stackTrace"?}``.
    #: Timeouts and crashed workers are reported here too, as AWS reports them.
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    cold_start: bool = False
    #: On a cold start, the worker's init duration.
    init_ms: float | None = None
    #: The part of ``init_ms`` that imported the handler's module (its module-level code, the
    #: function's own init); the rest is the runtime's start. None when the worker did not say.
    module_init_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
