"""The composition root: settings from the environment, and every collaborator built once.

Handlers ask :func:`get_container` for services. The container builds boto3 clients and
adapters on first use and keeps them for the life of the Lambda process (warm invocations
reuse them). Nothing here asks whether it runs locally: endpoints are plain settings
(``AWS_ENDPOINT_URL`` is honoured by boto3 itself; ``CONNECTIONS_ENDPOINT_URL`` and
``JWKS_URL`` are ours).

Tests and tools swap parts with :func:`override`::

    with override(notifier=RecordingNotifier(), clock=fixed_clock):
        send_message.lambda_handler(event, context)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chat.adapters.cognito import (
    CognitoAccountStatus,
    CognitoJwtVerifier,
    CognitoUserDirectory,
    SigningKeys,
    jwks_client,
)
from chat.adapters.connections_api import ConnectionsApiNotifier, connections_endpoint
from chat.adapters.dynamodb import DynamoConnectionStore, DynamoConversationStore, DynamoMessageStore
from chat.domain.models import UserProfile
from chat.domain.ports import (
    Clock,
    ConnectionStore,
    ConversationStore,
    MessageStore,
    Notifier,
    TokenVerifier,
    UserDirectory,
)
from chat.domain.services import (
    AuthService,
    ConnectionService,
    ConversationService,
    DirectoryService,
    FrameLimiter,
    MessagingService,
    PingService,
)

__all__ = [
    "AuthSettings",
    "Container",
    "DirectorySettings",
    "StoreSettings",
    "get_container",
    "override",
    "set_container",
]

# Lambda's own timeout is 10 s: fail a stuck call early enough to answer the client.
_BOTO_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


class _EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # An empty variable (``FOO=``) means "not set", as it does for boto3's own settings.
        return None if value == "" else value


class StoreSettings(_EnvSettings):
    """What the connection and message functions read from their environment."""

    connections_table: str = Field(alias="CONNECTIONS_TABLE")
    user_connections_table: str = Field(alias="USER_CONNECTIONS_TABLE")
    messages_table: str = Field(alias="MESSAGES_TABLE")
    conversations_table: str = Field(alias="CONVERSATIONS_TABLE")
    #: Overrides the ``@connections`` endpoint otherwise built from each event.
    connections_endpoint_url: str | None = Field(default=None, alias="CONNECTIONS_ENDPOINT_URL")


class AuthSettings(_EnvSettings):
    """What the authorizer reads from its environment."""

    user_pool_id: str = Field(alias="USER_POOL_ID")
    user_pool_client_id: str = Field(alias="USER_POOL_CLIENT_ID")
    cognito_issuer: str = Field(alias="COGNITO_ISSUER")
    #: Where the pool's public keys are served, when not under the issuer URL.
    jwks_url: str | None = Field(default=None, alias="JWKS_URL")
    #: Seconds a warm authorizer trusts Cognito's answer on whether a user is enabled.
    user_status_cache_seconds: float = Field(default=60.0, ge=0, alias="USER_STATUS_CACHE_SECONDS")

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.cognito_issuer.rstrip('/')}/.well-known/jwks.json"


class DirectorySettings(_EnvSettings):
    """What the functions that look users up read from their environment."""

    user_pool_id: str = Field(alias="USER_POOL_ID")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Container:
    """Builds each collaborator on first use and keeps it.

    Every argument replaces the part of the same name; parts left out are built from the
    environment. Settings are read (and validated) only when a part needs them, so the
    authorizer never needs table names and the message functions never need a pool id.

    Args:
        environ: where settings come from; ``os.environ`` by default.
        connections: the connection store.
        messages: the message store.
        conversations: the conversation store.
        directory: the user directory.
        notifier: used for every ``@connections`` endpoint (tests record posts with it).
        verifier: the token verifier.
        signing_keys: the JWKS source for the default verifier (e.g. a JWKS in hand).
        clock: returns the current time, timezone-aware.
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        connections: ConnectionStore | None = None,
        messages: MessageStore | None = None,
        conversations: ConversationStore | None = None,
        directory: UserDirectory | None = None,
        notifier: Notifier | None = None,
        verifier: TokenVerifier | None = None,
        signing_keys: SigningKeys | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._connections = connections
        self._messages = messages
        self._conversations = conversations
        self._directory = directory
        self._notifier = notifier
        self._verifier = verifier
        self._signing_keys = signing_keys
        self.clock: Clock = clock or _utc_now
        self._notifiers: dict[str, Notifier] = {}

    # ------------------------------------------------------------------ settings

    @cached_property
    def store_settings(self) -> StoreSettings:
        return StoreSettings.model_validate(dict(self._environ))

    @cached_property
    def auth_settings(self) -> AuthSettings:
        return AuthSettings.model_validate(dict(self._environ))

    @cached_property
    def directory_settings(self) -> DirectorySettings:
        return DirectorySettings.model_validate(dict(self._environ))

    # ------------------------------------------------------------------ adapters

    @cached_property
    def _session(self) -> boto3.session.Session:
        return boto3.session.Session()

    @cached_property
    def _dynamodb(self) -> Any:
        return self._session.resource("dynamodb", config=_BOTO_CONFIG)

    @cached_property
    def _cognito(self) -> Any:
        return self._session.client("cognito-idp", config=_BOTO_CONFIG)

    def _table(self, name: str) -> Any:
        return self._dynamodb.Table(name)

    @cached_property
    def connections(self) -> ConnectionStore:
        if self._connections is not None:
            return self._connections
        settings = self.store_settings
        return DynamoConnectionStore(
            self._table(settings.connections_table), self._table(settings.user_connections_table)
        )

    @cached_property
    def messages(self) -> MessageStore:
        if self._messages is not None:
            return self._messages
        settings = self.store_settings
        return DynamoMessageStore(
            self._table(settings.messages_table),
            self._table(settings.conversations_table),
            self._table(settings.connections_table),
        )

    @cached_property
    def conversations(self) -> ConversationStore:
        if self._conversations is not None:
            return self._conversations
        return DynamoConversationStore(self._table(self.store_settings.conversations_table))

    @cached_property
    def directory(self) -> UserDirectory:
        if self._directory is not None:
            return self._directory
        return CognitoUserDirectory(self._cognito, self.directory_settings.user_pool_id)

    @cached_property
    def verifier(self) -> TokenVerifier:
        if self._verifier is not None:
            return self._verifier
        settings = self.auth_settings
        accounts = CognitoAccountStatus(
            self._cognito, settings.user_pool_id, ttl=settings.user_status_cache_seconds
        )
        return CognitoJwtVerifier(
            issuer=settings.cognito_issuer,
            client_id=settings.user_pool_client_id,
            keys=self._signing_keys or jwks_client(settings.resolved_jwks_url),
            accounts=accounts,
        )

    def connections_endpoint_for(self, domain_name: str, stage: str) -> str:
        """``CONNECTIONS_ENDPOINT_URL`` when set, else the endpoint the event names."""
        return self.store_settings.connections_endpoint_url or connections_endpoint(domain_name, stage)

    def notifier(self, endpoint_url: str) -> Notifier:
        """The notifier for one ``@connections`` endpoint (one boto3 client per endpoint)."""
        if self._notifier is not None:
            return self._notifier
        if endpoint_url not in self._notifiers:
            client = self._session.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_BOTO_CONFIG)
            self._notifiers[endpoint_url] = ConnectionsApiNotifier(client)
        return self._notifiers[endpoint_url]

    # ------------------------------------------------------------------ services

    def auth_service(self) -> AuthService:
        return AuthService(self.verifier)

    def connection_service(self) -> ConnectionService:
        return ConnectionService(self.connections, self.clock)

    def frame_limiter(self) -> FrameLimiter:
        return FrameLimiter(self.connections, self.clock)

    def messaging_service(self, notifier: Notifier) -> MessagingService:
        return MessagingService(
            messages=self.messages,
            connections=self.connections,
            # Only sendMessage's function has USER_POOL_ID, and only a conversation's first
            # message asks: the other message functions never build the directory.
            directory=_DirectoryOnFirstUse(lambda: self.directory),
            notifier=notifier,
            clock=self.clock,
            limiter=self.frame_limiter(),
        )

    def conversation_service(self, notifier: Notifier) -> ConversationService:
        return ConversationService(
            conversations=self.conversations,
            messages=self.messages,
            # listConversations names people through it; getHistory's function has no
            # USER_POOL_ID and never asks.
            directory=_DirectoryOnFirstUse(lambda: self.directory),
            connections=self.connections,
            notifier=notifier,
        )

    def directory_service(self, notifier: Notifier) -> DirectoryService:
        return DirectoryService(directory=self.directory, connections=self.connections, notifier=notifier)

    def ping_service(self) -> PingService:
        return PingService(self.clock)


class _DirectoryOnFirstUse:
    """A :class:`UserDirectory` built when first asked, not when the service is."""

    def __init__(self, build: Callable[[], UserDirectory]) -> None:
        self._build = build

    def search(self, query: str, limit: int) -> list[UserProfile]:
        return self._build().search(query, limit)

    def names_of(self, user_ids: Iterable[str]) -> dict[str, str]:
        return self._build().names_of(user_ids)

    def exists(self, user_id: str) -> bool:
        return self._build().exists(user_id)


_current: Container | None = None


def get_container() -> Container:
    """The process-wide container, built on first call."""
    global _current
    if _current is None:
        _current = Container()
    return _current


def set_container(container: Container | None) -> None:
    """Install ``container`` for every later invocation; None goes back to the default."""
    global _current
    _current = container


@contextmanager
def override(**parts: Any) -> Iterator[Container]:
    """Run with a fresh :class:`Container` built from ``parts``, then restore the previous one."""
    global _current
    previous = _current
    _current = Container(**parts)
    try:
        yield _current
    finally:
        _current = previous
