"""Read a SAM/CloudFormation template into the :class:`~wsstack.model.App` the stack runs.

The template goes through ``aws-sam-translator`` — the same translator CloudFormation's
``AWS::Serverless-2016-10-31`` transform uses — so ``AWS::Serverless::*`` resources arrive
here exactly as AWS would expand them, and raw ``AWS::ApiGatewayV2::*`` resources pass
through untouched. There is no second, hand-written schema to drift from the template.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import yaml

from wsstack.model import ApiKey, App, Authorizer, Function, Resource, Route, StageSettings, Throttle, WebSocketApi
from wsstack.node import NODE_RUNTIMES

__all__ = ["TemplateError", "api_key_id", "load_app", "load_yaml", "resolve", "resolve_stage_variables"]

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
_LOCAL_CODE_BUCKET = "wsstack-local-code"
_SUB_VAR = re.compile(r"\$\{([^!}][^}]*)\}")


class TemplateError(Exception):
    """The template cannot be run locally; the message names the resource and the fix."""


def read_json_file(path: Path, label: str) -> Any:
    """A JSON file the stack is given beside the template, or a :class:`TemplateError` naming it.

    ``label`` names the file in the sentence, e.g. ``"--env-vars file"``.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"{label} {path} does not exist.") from None
    except ValueError as exc:
        raise TemplateError(f"{label} {path} is not valid JSON: {exc}") from None


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form intrinsic tags."""


def _construct_intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):  # the two long forms without "Fn::"
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a template file (YAML or JSON) with intrinsic tags expanded to their long form."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    except FileNotFoundError:
        raise TemplateError(f"No template at {path}: pass --template PATH.") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path} has no Resources section; is it a SAM/CloudFormation template?")
    return data


def load_app(
    path: Path, parameters: Mapping[str, str] | None = None, *, region: str = DEFAULT_REGION
) -> App:
    """Translate the template at ``path`` and extract what the local stack runs.

    Args:
        path: the SAM or CloudFormation template.
        parameters: values for the template's Parameters (defaults fill the rest).
        region: the region pseudo parameter used while translating.

    Raises:
        TemplateError: the template is invalid or uses something the stack cannot run.
    """
    path = Path(path)
    template = load_yaml(path)
    params = _parameter_values(template, parameters or {})
    translated = _apply_conditions(_translate(template, params, region), params, region)
    resources = {
        logical_id: Resource(logical_id, body.get("Type", ""), body.get("Properties") or {})
        for logical_id, body in translated.get("Resources", {}).items()
    }
    functions = _functions(resources, path.parent, params, region)
    return App(
        functions=functions,
        apis=_websocket_apis(resources, functions, params),
        resources=resources,
        parameters=params,
        outputs=translated.get("Outputs") or {},
    )


def _parameter_values(template: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"Unknown template parameter(s): {', '.join(unknown)}.")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = str(given[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise TemplateError(f"Parameter {name} has no Default: give it a value (--parameter {name}=...).")
    return values


def _translate(template: dict[str, Any], params: dict[str, str], region: str) -> dict[str, Any]:
    """Run aws-sam-translator on a copy whose local CodeUris are S3 placeholders.

    The translator only accepts S3 code locations (``sam build`` uploads first); we hand it
    ``s3://<placeholder>/<local path>`` and read the path back from the translated ``Code``.
    """
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    if isinstance(globals_fn.get("CodeUri"), str):
        globals_fn["CodeUri"] = f"s3://{_LOCAL_CODE_BUCKET}/{globals_fn['CodeUri']}"
    for body in template["Resources"].values():
        props = body.get("Properties") or {}
        if body.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://{_LOCAL_CODE_BUCKET}/{props['CodeUri']}"
        elif body.get("Type") == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
            # A local folder as Code, which `sam build` and `aws cloudformation package` accept.
            props["Code"] = {"S3Bucket": _LOCAL_CODE_BUCKET, "S3Key": props["Code"]}

    values = {**params, "AWS::Region": region, "AWS::AccountId": ACCOUNT_ID}
    # A session that only carries the region: the translator reads pseudo parameters from
    # it and must never reach AWS. Managed policy names would need IAM; locally no policy
    # is enforced, so none are looked up.
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        return translator.translate(template, parameter_values=values, get_managed_policy_map=dict)
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"The SAM translator rejected the template: {causes}") from None


#: What a ``Ref AWS::NoValue`` stands for while conditions are applied: the property goes.
_NO_VALUE = object()


def _apply_conditions(translated: dict[str, Any], params: Mapping[str, str], region: str) -> dict[str, Any]:
    """Settle the template's ``Conditions`` with the parameter values, as CloudFormation does.

    Each ``Fn::If`` becomes the branch its condition picks, a ``Ref: AWS::NoValue`` removes
    the property it is the value of, and resources and outputs whose ``Condition`` is false
    are left out. Conditions depend only on parameters and pseudo parameters, so they are
    known before anything is created.
    """
    conditions = _Conditions(translated.get("Conditions") or {}, params, region)

    def kept(section: str) -> dict[str, Any]:
        entries = translated.get(section) or {}
        return {
            name: conditions.choose(body) for name, body in entries.items()
            if not isinstance(body, dict) or "Condition" not in body or conditions.value(body["Condition"])
        }

    return {**translated, "Resources": kept("Resources"), "Outputs": kept("Outputs")}


class _Conditions:
    """The template's conditions, each evaluated once, on first use."""

    def __init__(self, declared: Mapping[str, Any], params: Mapping[str, str], region: str) -> None:
        self._declared = declared
        self._params = params
        self._region = region
        self._settled: dict[str, bool] = {}

    def value(self, name: Any, seen: tuple[str, ...] = ()) -> bool:
        if not isinstance(name, str) or name not in self._declared:
            raise TemplateError(f"Condition {name!r} is not declared under Conditions.")
        if name in seen:
            raise TemplateError(f"Condition {name} depends on itself.")
        if name not in self._settled:
            self._settled[name] = self._evaluate(self._declared[name], (*seen, name))
        return self._settled[name]

    def _evaluate(self, node: Any, seen: tuple[str, ...]) -> bool:
        key, arg = next(iter(node.items())) if isinstance(node, dict) and len(node) == 1 else ("", None)
        if key == "Condition":
            return self.value(arg, seen)
        if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            return not self._evaluate(arg[0], seen)
        if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            results = [self._evaluate(item, seen) for item in arg]
            return all(results) if key == "Fn::And" else any(results)
        if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = (str(resolve(item, {}, self._params, region=self._region)) for item in arg)
            return left == right
        raise TemplateError(
            f"Condition {seen[-1]} cannot be evaluated locally; build it from Fn::Equals, Fn::Not, "
            "Fn::And, Fn::Or and Condition."
        )

    def choose(self, node: Any) -> Any:
        """``node`` with every ``Fn::If`` replaced by its chosen branch and ``AWS::NoValue`` removed."""
        if isinstance(node, list):
            return [item for item in map(self.choose, node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Fn::If":
                if not isinstance(arg, list) or len(arg) != 3:
                    raise TemplateError(f"Fn::If takes [condition, value if true, value if false], not {arg!r}.")
                return self.choose(arg[1] if self.value(arg[0]) else arg[2])
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
        chosen = {key: self.choose(value) for key, value in node.items()}
        return {key: value for key, value in chosen.items() if value is not _NO_VALUE}


def _functions(
    resources: dict[str, Resource], base_dir: Path, params: Mapping[str, str], region: str
) -> dict[str, Function]:
    functions: dict[str, Function] = {}
    for res in resources.values():
        if res.type != "AWS::Lambda::Function":
            continue
        props = res.properties
        code = props.get("Code") or {}
        if code.get("S3Bucket") != _LOCAL_CODE_BUCKET:
            raise TemplateError(
                f"{res.logical_id}: only code in a local folder can run locally; set CodeUri (Code for "
                "AWS::Lambda::Function) to a folder next to the template."
            )
        code_dir = (base_dir / code["S3Key"]).resolve()
        handler, runtime = props.get("Handler"), props.get("Runtime", "")
        if str(runtime) in NODE_RUNTIMES:
            _check_node_handler(res.logical_id, handler, code_dir)
        elif str(runtime).startswith("python"):
            _check_python_handler(res.logical_id, handler, code_dir)
        else:
            raise TemplateError(
                f"{res.logical_id}: runtime {runtime!r} is not supported; use a python3.x runtime or "
                f"{' or '.join(NODE_RUNTIMES)}."
            )
        functions[res.logical_id] = Function(
            logical_id=res.logical_id,
            handler=handler,
            runtime=str(runtime),
            code_dir=code_dir,
            timeout=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=dict((props.get("Environment") or {}).get("Variables") or {}),
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
            function_name=_function_name(res, params, region),
        )
    named: dict[str, str] = {}
    for fn in functions.values():
        if fn.name in named:
            raise TemplateError(f"{named[fn.name]} and {fn.logical_id} are both named {fn.name!r}; "
                                "FunctionName must be unique.")
        named[fn.name] = fn.logical_id
    return functions


def _check_python_handler(logical_id: str, handler: object, code_dir: Path) -> None:
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{logical_id}: Handler must look like 'package.module.function'.")
    module_path = handler.rsplit(".", 1)[0].replace(".", os.sep)
    if not (code_dir / f"{module_path}.py").is_file() and not (code_dir / module_path).is_dir():
        raise TemplateError(
            f"{logical_id}: handler module {module_path}.py not found under {code_dir}; check Handler and CodeUri."
        )


#: What Lambda's Node runtime tries for a handler's module, in its order (``.js`` as CommonJS
#: or, under a ``"type": "module"`` package.json, as an ES module).
_NODE_EXTENSIONS = ("", ".js", ".mjs", ".cjs")


def _check_node_handler(logical_id: str, handler: object, code_dir: Path) -> None:
    # Lambda's Node runtime reads `dir/file.export[.nested]`: the file is what comes before the
    # first dot of the last path segment.
    folder, _, last = handler.rpartition("/") if isinstance(handler, str) else ("", "", "")
    module, dot, export = last.partition(".")
    if not dot or not module or not export or ".." in folder:
        raise TemplateError(f"{logical_id}: Handler must look like 'file.export' (or 'folder/file.export').")
    base = code_dir / folder / module
    if not any(Path(f"{base}{extension}").is_file() for extension in _NODE_EXTENSIONS):
        shown = f"{folder}/{module}" if folder else module
        raise TemplateError(
            f"{logical_id}: handler file {shown}.js (or .mjs, .cjs) not found under {code_dir}; "
            "check Handler and CodeUri."
        )


def _function_name(res: Resource, params: Mapping[str, str], region: str) -> str | None:
    """The function's ``FunctionName``, resolved, or None when the template sets none."""
    value = res.properties.get("FunctionName")
    if value is None:
        return None
    try:
        name = resolve(value, {}, params, region=region)
    except TemplateError as exc:
        raise TemplateError(
            f"{res.logical_id}: FunctionName: {exc} Locally a FunctionName may use parameters and "
            "pseudo parameters only."
        ) from None
    if not isinstance(name, str) or not name:
        raise TemplateError(f"{res.logical_id}: FunctionName must be a non-empty string.")
    return name


def _referenced_ids(value: Any) -> set[str]:
    """Logical ids a property value points at through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(m.split(".", 1)[0] for m in _SUB_VAR.findall(str(text)))
                found.update(_referenced_ids(inner[1] if isinstance(inner, list) else None))
            else:
                found.update(_referenced_ids(inner))
    elif isinstance(value, list):
        for item in value:
            found.update(_referenced_ids(item))
    return found


def _target_function(res: Resource, key: str, functions: dict[str, Function]) -> str | None:
    targets = sorted(_referenced_ids(res.properties.get(key)) & set(functions))
    return targets[0] if targets else None


def _websocket_apis(
    resources: dict[str, Resource], functions: dict[str, Function], params: dict[str, str]
) -> dict[str, WebSocketApi]:
    """The template's WebSocket APIs, raw ``AWS::ApiGatewayV2::*`` and SAM-translated alike.

    ``AWS::Serverless::WebSocketApi`` arrives here already expanded by the translator into an
    Api, one Route + Integration + Permission per route, a Stage and (with ``Auth``) an
    Authorizer, so both spellings are read by the same code.
    """

    def of_api(type_name: str, api_id: str) -> list[Resource]:
        return [
            r for r in resources.values()
            if r.type == type_name and _referenced_ids(r.properties.get("ApiId")) == {api_id}
        ]

    apis = {}
    for api in resources.values():
        if api.type != "AWS::ApiGatewayV2::Api" or api.properties.get("ProtocolType") != "WEBSOCKET":
            continue
        integrations = {r.logical_id: r for r in of_api("AWS::ApiGatewayV2::Integration", api.logical_id)}
        authorizers = {
            r.logical_id: Authorizer(
                logical_id=r.logical_id,
                function=_require_function(r, "AuthorizerUri", functions),
                identity_sources=tuple(r.properties.get("IdentitySource") or ()),
            )
            for r in of_api("AWS::ApiGatewayV2::Authorizer", api.logical_id)
        }
        two_way = {
            next(iter(_referenced_ids(r.properties.get("RouteId"))), "")
            for r in of_api("AWS::ApiGatewayV2::RouteResponse", api.logical_id)
            if r.properties.get("RouteResponseKey") == "$default"
        }
        models = _models(of_api("AWS::ApiGatewayV2::Model", api.logical_id), params)
        routes = {}
        for r in of_api("AWS::ApiGatewayV2::Route", api.logical_id):
            key = str(r.properties["RouteKey"])
            target_ids = _referenced_ids(r.properties.get("Target"))
            integration = next((integrations[i] for i in sorted(target_ids) if i in integrations), None)
            if r.properties.get("Target") and integration is None:
                raise TemplateError(
                    f"{r.logical_id} (route {key!r}): its Target does not name an integration of this API; "
                    "set it to !Sub integrations/${YourIntegration}."
                )
            auth_type = str(r.properties.get("AuthorizationType", "NONE"))
            auth_ids = _referenced_ids(r.properties.get("AuthorizerId")) & set(authorizers)
            routes[key] = Route(
                route_key=key,
                function=_lambda_proxy_target(r, key, integration, functions) if integration else None,
                authorization_type=auth_type,
                authorizer=authorizers[next(iter(auth_ids))] if auth_ids else None,
                two_way=r.logical_id in two_way,
                timeout=_integration_timeout(r, key, integration, params) if integration else None,
                **_route_extras(r, key, models, params),
            )
        stage_resources = of_api("AWS::ApiGatewayV2::Stage", api.logical_id)
        stages = tuple(str(resolve(s.properties.get("StageName"), {}, params)) for s in stage_resources)
        settings = {name: _stage_settings(s, params) for name, s in zip(stages, stage_resources, strict=True)}
        apis[api.logical_id] = WebSocketApi(
            logical_id=api.logical_id,
            name=str(resolve(api.properties.get("Name", api.logical_id), {}, params)),
            route_selection_expression=str(api.properties.get("RouteSelectionExpression", "")),
            routes=routes,
            stages=tuple(dict.fromkeys(stages)) or ("$default",),
            stage_settings=settings,
            api_key_selection_expression=_api_key_selection_expression(api, params),
            api_keys=_api_keys(resources, api.logical_id, stage_resources, params),
        )
    return apis


def _as_bool(value: Any) -> bool:
    # CloudFormation accepts booleans and their string spellings ("true", "False").
    return value is True or str(value).lower() == "true"


def _models(models: list[Resource], params: dict[str, str]) -> dict[str, dict[str, Any]]:
    """An API's ``AWS::ApiGatewayV2::Model`` schemas by ``Name``, as ``RequestModels`` name them.

    API Gateway validates WebSocket bodies against JSON Schema draft 4; a schema that is not
    one stops start-up here, as AWS refuses to create the model.
    """
    from jsonschema import Draft4Validator
    from jsonschema.exceptions import SchemaError

    found: dict[str, dict[str, Any]] = {}
    for model in models:
        name = str(resolve(model.properties.get("Name", model.logical_id), {}, params))
        schema = model.properties.get("Schema")
        if isinstance(schema, str):  # CloudFormation also takes the schema as a JSON string
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise TemplateError(f"{model.logical_id}: Schema is not valid JSON: {exc}") from None
        if not isinstance(schema, dict):
            raise TemplateError(f"{model.logical_id}: Schema must be a JSON schema (an object).")
        try:
            Draft4Validator.check_schema(schema)
        except SchemaError as exc:
            raise TemplateError(
                f"{model.logical_id}: Schema is not a valid JSON schema (draft 4): {exc.message}"
            ) from None
        found[name] = schema
    return found


def _route_extras(
    route: Resource, key: str, models: dict[str, dict[str, Any]], params: dict[str, str]
) -> dict[str, Any]:
    """A route's API key requirement and request validation, checked as AWS checks them."""
    props = route.properties
    where = f"{route.logical_id} (route {key!r})"
    api_key_required = _as_bool(props.get("ApiKeyRequired", False))
    if api_key_required and key != "$connect":
        # AWS supports API keys on WebSocket APIs for the $connect route only.
        raise TemplateError(f"{where} sets ApiKeyRequired; WebSocket APIs support API keys on $connect only.")
    required = sorted(
        str(name) for name, spec in (props.get("RequestParameters") or {}).items()
        if isinstance(spec, dict) and _as_bool(spec.get("Required", False))
    )
    if required:
        # API Gateway refuses a $connect that lacks a required parameter; the local gateway does
        # not check them, so it refuses the template rather than let such a $connect through.
        raise TemplateError(
            f"{where}: RequestParameters {', '.join(required)} Required: true is not enforced by the local "
            "stack; remove Required (or check the parameter in the $connect function) for local runs."
        )
    request_models: dict[str, dict[str, Any]] = {}
    for selection, name in (props.get("RequestModels") or {}).items():
        model_name = str(resolve(name, {}, params))
        if model_name not in models:
            raise TemplateError(
                f"{where}: RequestModels names model {model_name!r}, which is not an AWS::ApiGatewayV2::Model "
                "of this API; add it or fix the name."
            )
        request_models[str(selection)] = models[model_name]
    expression = props.get("ModelSelectionExpression")
    return {
        "api_key_required": api_key_required,
        "model_selection_expression": str(resolve(expression, {}, params)) if expression is not None else None,
        "request_models": request_models,
    }


def _throttle(settings: Any, where: str, params: dict[str, str]) -> Throttle:
    if not isinstance(settings, dict):
        raise TemplateError(f"{where} must be an object of route settings.")
    burst, rate = (resolve(settings.get(name), {}, params)
                   for name in ("ThrottlingBurstLimit", "ThrottlingRateLimit"))
    try:
        throttle = Throttle(
            burst_limit=int(burst) if burst is not None else None,
            rate_limit=float(rate) if rate is not None else None,
        )
    except (TypeError, ValueError):
        raise TemplateError(
            f"{where}: ThrottlingBurstLimit must be an integer and ThrottlingRateLimit a number."
        ) from None
    if (throttle.burst_limit or 0) < 0 or (throttle.rate_limit or 0) < 0:
        raise TemplateError(f"{where}: throttling limits cannot be negative.")
    return throttle


def _stage_settings(stage: Resource, params: dict[str, str]) -> StageSettings:
    """A stage's variables and route throttling, from ``StageVariables``,
    ``DefaultRouteSettings`` and ``RouteSettings``."""
    props = stage.properties
    # Kept as written: a value may name a resource created at start-up (!Ref Table), which
    # resolve_stage_variables settles once the stack knows the local names.
    variables = props.get("StageVariables") or {}
    if not isinstance(variables, dict):
        raise TemplateError(f"{stage.logical_id}: StageVariables must be an object of names and values.")
    route_settings = props.get("RouteSettings") or {}
    if not isinstance(route_settings, dict):
        raise TemplateError(f"{stage.logical_id}: RouteSettings must be an object keyed by route key.")
    return StageSettings(
        variables={str(k): v for k, v in variables.items()},
        default_throttle=_throttle(props.get("DefaultRouteSettings") or {},
                                   f"{stage.logical_id} DefaultRouteSettings", params),
        route_throttles={
            str(key): _throttle(value, f"{stage.logical_id} RouteSettings {key!r}", params)
            for key, value in route_settings.items()
        },
    )


def resolve_stage_variables(
    api: WebSocketApi,
    refs: Mapping[str, str],
    parameters: Mapping[str, str],
    *,
    region: str = DEFAULT_REGION,
    resources: Mapping[str, Resource] | None = None,
) -> WebSocketApi:
    """``api`` with its stages' ``StageVariables`` resolved to the strings events carry.

    Raises:
        TemplateError: a value names something the local stack does not know (the sentence
            names the API, the stage and the variable).
    """
    settings = {}
    for stage, stage_settings in api.stage_settings.items():
        variables = {}
        for name, value in stage_settings.variables.items():
            try:
                variables[name] = str(resolve(value, refs, parameters, region=region, resources=resources))
            except TemplateError as exc:
                raise TemplateError(f"{api.logical_id} stage {stage}: StageVariables {name}: {exc}") from None
        settings[stage] = dataclasses.replace(stage_settings, variables=variables)
    return dataclasses.replace(api, stage_settings=settings)


_API_KEY_EXPRESSIONS = ("$request.header.x-api-key", "$context.authorizer.usageIdentifierKey")


def _api_key_selection_expression(api: Resource, params: dict[str, str]) -> str:
    expression = str(resolve(api.properties.get("ApiKeySelectionExpression", _API_KEY_EXPRESSIONS[0]), {}, params))
    if expression not in _API_KEY_EXPRESSIONS:
        raise TemplateError(
            f"{api.logical_id}: ApiKeySelectionExpression {expression!r} is not one API Gateway accepts; use "
            "$request.header.x-api-key or $context.authorizer.usageIdentifierKey."
        )
    return expression


def _local_id(logical_id: str, length: int) -> str:
    """A stable lowercase alphanumeric id derived from a logical id (AWS generates one)."""
    digest = int.from_bytes(hashlib.sha256(logical_id.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        digest, index = divmod(digest, 36)
        chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[index])
    return "".join(chars)


def api_key_id(logical_id: str) -> str:
    """An ``AWS::ApiGateway::ApiKey``'s id (its ``Ref``, ``apiKeyId`` in events), stable across runs."""
    return _local_id(logical_id, 10)


def _api_keys(
    resources: dict[str, Resource], api_id: str, stages: list[Resource], params: dict[str, str]
) -> dict[str, tuple[ApiKey, ...]]:
    """The API keys that usage plans attach to each stage of one API.

    A key works on a stage when an ``AWS::ApiGateway::UsagePlanKey`` puts it in an
    ``AWS::ApiGateway::UsagePlan`` whose ``ApiStages`` name that API and stage. What a usage
    plan also meters (``Throttle``, ``Quota``) is not reproduced locally, so a plan that sets
    either stops start-up rather than being ignored.
    """
    stage_names = {s.logical_id: str(resolve(s.properties.get("StageName"), {}, params)) for s in stages}
    plans: dict[str, set[str]] = {}
    for plan in resources.values():
        if plan.type != "AWS::ApiGateway::UsagePlan":
            continue
        for api_stage in plan.properties.get("ApiStages") or []:
            if _referenced_ids(api_stage.get("ApiId")) != {api_id}:
                continue
            if api_stage.get("Throttle"):
                raise TemplateError(f"{plan.logical_id}: ApiStages Throttle is not enforced by the local stack; "
                                    "remove it for local runs (throttle with the stage's RouteSettings).")
            stage_ref = api_stage.get("Stage")
            named = _referenced_ids(stage_ref) & set(stage_names)
            stage = stage_names[next(iter(named))] if named else str(resolve(stage_ref, {}, params))
            plans.setdefault(plan.logical_id, set()).add(stage)
            for unsupported in ("Throttle", "Quota"):
                if plan.properties.get(unsupported):
                    raise TemplateError(
                        f"{plan.logical_id}: {unsupported} is not enforced by the local stack; remove it for local "
                        "runs (throttle with the stage's DefaultRouteSettings or RouteSettings)."
                    )
    keys: dict[str, list[ApiKey]] = {}
    for plan_key in resources.values():
        if plan_key.type != "AWS::ApiGateway::UsagePlanKey":
            continue
        plan_ids = _referenced_ids(plan_key.properties.get("UsagePlanId")) & set(plans)
        key_ids = _referenced_ids(plan_key.properties.get("KeyId"))
        key_res = next((resources[k] for k in sorted(key_ids) if k in resources
                        and resources[k].type == "AWS::ApiGateway::ApiKey"), None)
        if not plan_ids:
            continue
        if key_res is None:
            raise TemplateError(
                f"{plan_key.logical_id}: KeyId must be !Ref an AWS::ApiGateway::ApiKey of this template."
            )
        key = _api_key(key_res, params)
        for stage in plans[next(iter(plan_ids))]:
            if key not in keys.setdefault(stage, []):
                keys[stage].append(key)
    return {stage: tuple(found) for stage, found in keys.items()}


def _api_key(res: Resource, params: dict[str, str]) -> ApiKey:
    """An API key as AWS creates it: its ``Value``, else a generated one (here stable across runs)."""
    value = res.properties.get("Value")
    if value is not None:
        value = str(resolve(value, {}, params))
        if len(value) < 20:
            # API Gateway refuses key values shorter than 20 characters.
            raise TemplateError(f"{res.logical_id}: Value must be at least 20 characters, as API Gateway requires.")
    return ApiKey(
        logical_id=res.logical_id,
        key_id=api_key_id(res.logical_id),
        value=value if value is not None else _local_id(f"api-key:{res.logical_id}", 40),
        # CloudFormation creates a key disabled unless Enabled is true.
        enabled=_as_bool(res.properties.get("Enabled", False)),
        generated=value is None,
    )


def _lambda_proxy_target(
    route: Resource, key: str, integration: Resource, functions: dict[str, Function]
) -> str:
    """The function a route's integration proxies to; refuses what only AWS can run.

    A WebSocket route may also integrate with an HTTP endpoint, a mock, or an AWS service
    through mapping templates (``HTTP``, ``HTTP_PROXY``, ``MOCK``, ``AWS``); the local stack
    reproduces only Lambda proxy integrations, so the others stop the start-up with a
    sentence naming the route, rather than a route that silently does nothing.
    """
    kind = str(integration.properties.get("IntegrationType", ""))
    where = f"{route.logical_id} (route {key!r})"
    if kind != "AWS_PROXY":
        raise TemplateError(
            f"{where} uses integration {integration.logical_id} of type {kind or 'unset'}, which the local "
            "stack cannot run; make it IntegrationType: AWS_PROXY with a Lambda function of this template."
        )
    target = _target_function(integration, "IntegrationUri", functions)
    if target is None:
        raise TemplateError(
            f"{where}: integration {integration.logical_id} does not point at a function of this template; "
            "set its IntegrationUri to !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/"
            "2015-03-31/functions/${YourFunction.Arn}/invocations."
        )
    return target


def _integration_timeout(route: Resource, key: str, integration: Resource, params: dict[str, Any]) -> float | None:
    """An integration's ``TimeoutInMillis`` in seconds (AWS accepts 50 to 29,000), or None."""
    value = integration.properties.get("TimeoutInMillis")
    if value is None:
        return None
    millis = resolve(value, {}, params)
    try:
        millis = int(millis)
    except (TypeError, ValueError):
        millis = -1
    if not 50 <= millis <= 29_000:
        raise TemplateError(
            f"{route.logical_id} (route {key!r}): integration {integration.logical_id} has TimeoutInMillis "
            f"{millis if millis >= 0 else value!r}; API Gateway accepts 50 to 29000."
        )
    return millis / 1000


def _require_function(res: Resource, key: str, functions: dict[str, Function]) -> str:
    target = _target_function(res, key, functions)
    if target is None:
        raise TemplateError(f"{res.logical_id}: {key} must point at a Lambda function of this template.")
    return target


def _attribute(rtype: str, logical_id: str, attr: str, ref: str, region: str) -> str:
    """What ``Fn::GetAtt`` gives locally for attributes derived from the resource's name.

    Attributes known only once the stack runs (a table's stream ARN, an API's endpoint) are
    passed to :func:`resolve` in ``refs`` instead, under ``"<LogicalId>.<Attribute>"``.
    """
    arn_by_type = {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{ref}",
        "AWS::Cognito::UserPool": f"arn:aws:cognito-idp:{region}:{ACCOUNT_ID}:userpool/{ref}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{ref}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{ref}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{ref}",
    }
    # Attributes that are the resource's own id, which is also what Ref gives.
    same_as_ref = {
        "AWS::Cognito::UserPool": ("UserPoolId",),
        "AWS::Cognito::UserPoolClient": ("ClientId",),
        "AWS::ApiGatewayV2::Api": ("ApiId",),
    }
    if attr == "Arn" and rtype in arn_by_type:
        return arn_by_type[rtype]
    if attr in same_as_ref.get(rtype, ()):
        return ref
    if rtype == "AWS::Cognito::UserPool" and attr in ("ProviderURL", "ProviderName"):
        return f"cognito-idp.{region}.amazonaws.com/{ref}"
    raise TemplateError(f"Fn::GetAtt {logical_id}.{attr} is not supported by the local stack.")


def resolve(
    value: Any,
    refs: Mapping[str, str],
    parameters: Mapping[str, str],
    *,
    region: str = DEFAULT_REGION,
    resources: Mapping[str, Resource] | None = None,
) -> Any:
    """Resolve CloudFormation intrinsics in ``value`` to plain strings.

    Args:
        value: a property value as read from the template.
        refs: what ``Ref`` returns for each created resource (table name, pool id, ...);
            keys of the form ``"<LogicalId>.<Attribute>"`` give ``Fn::GetAtt`` values known
            only at run time (a table's ``StreamArn``, an API's ``ApiEndpoint``).
        parameters: template parameter values.
        region: the value of ``AWS::Region``.
        resources: the template's resources, for ``Fn::GetAtt`` ARNs.

    Raises:
        TemplateError: an intrinsic or attribute the local stack does not know.
    """
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::StackName": "local",
        "AWS::URLSuffix": "amazonaws.com",
    }
    names = {**pseudo, **parameters, **refs}

    def get_att(logical_id: str, attr: str) -> str:
        known = refs.get(f"{logical_id}.{attr}")
        rtype = resources[logical_id].type if resources and logical_id in resources else ""
        return known or _attribute(rtype, logical_id, attr, str(names.get(logical_id, logical_id)), region)

    def lookup(name: str, local: Mapping[str, Any]) -> str:
        if name in local:
            return str(walk(local[name]))
        if "." in name:
            return get_att(*name.split(".", 1))
        if name not in names:
            raise TemplateError(f"Ref {name} names no parameter or resource the local stack created.")
        return str(names[name])

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {key: walk(inner) for key, inner in node.items()}
        (key, arg), = node.items()
        if key == "Ref":
            return lookup(arg, {})
        if key == "Fn::GetAtt":
            logical_id, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return get_att(logical_id, attr)
        if key == "Fn::Sub":
            text, local = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
            # "${!Name}" is CloudFormation's escape for a literal "${Name}".
            return _SUB_VAR.sub(lambda m: lookup(m.group(1), local), text).replace("${!", "${")
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(item) for item in walk(items))
        if key.startswith("Fn::"):
            raise TemplateError(f"{key} is not supported by the local stack; use Ref, Fn::Sub or Fn::GetAtt.")
        return {key: walk(arg)}

    return walk(value)
