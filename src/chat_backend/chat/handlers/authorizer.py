"""$connect REQUEST authorizer: admit a connection carrying a valid Cognito token.

Valid means signed by the pool for our app client, unexpired, and its user still enabled:
Cognito does not revoke tokens when a user is disabled or deleted, so the verifier asks
Cognito (``AdminGetUser``, its answer kept 60 s per warm process; see
:class:`chat.adapters.cognito.CognitoAccountStatus`).

The answer is an IAM policy on the route's ``methodArn``: Allow with the user in the
context, or Deny, which API Gateway turns into a 403 on the handshake.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat.config import get_container
from chat.domain.errors import InvalidToken

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method_arn = event["methodArn"]
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        user = get_container().auth_service().authenticate(token)
    except InvalidToken as denied:
        logger.info("Connection denied", extra={"reason": denied.reason})
        return _policy("Deny", "unauthorized", method_arn)
    return _policy("Allow", user.user_id, method_arn, {"userId": user.user_id, "userName": user.user_name})


def _policy(effect: str, principal_id: str, method_arn: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    # Written out rather than via Powertools' APIGatewayAuthorizerResponseWebSocket, whose
    # from_route_arn rebuilds the ARN and drops its partition (aws-cn, aws-us-gov).
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
    response: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
    }
    if context:
        response["context"] = context
    return response
