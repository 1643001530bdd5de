"""Users created in the emulator's user pools before the stack says it is ready.

A local stack is only useful once someone can sign in. The users file names them per pool,
by the pool's logical id in the template::

    {"UserPool": [{"username": "alice", "password": "...", "attributes": {"email": "..."},
                   "sub": "7d8ca528-4931-4254-9273-ea5ee853f271"}]}

Each is created confirmed, with a permanent password and no invitation, as an administrator
would with ``AdminCreateUser`` and ``AdminSetUserPassword``. A user that already exists (kept
from the last run) keeps its ``sub``, its attributes and, once confirmed, its password: the
file's password is set again only for a user who could not sign in with a password without
a challenge (not confirmed, or told to reset it).

``sub`` is optional and local only: Cognito always picks a user's ``sub`` itself, but a
local user created from the file gets the one it names, so that sample events and demo
data can name the same user on every machine. A user kept from an earlier run keeps its own.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsstack.emulator_server import SET_SUB_PATH
from wsstack.template import TemplateError, read_json_file

__all__ = ["SeedUser", "create_users", "load_users"]


@dataclass(frozen=True)
class SeedUser:
    """One user to create: in which pool (logical id), with what password and attributes."""

    pool: str
    username: str
    password: str
    attributes: dict[str, str] = field(default_factory=dict)
    #: The ``sub`` to give the user when it is created (local only); None: the pool picks one.
    sub: str | None = None


def load_users(path: Path | None, pools: Collection[str], *, strict: bool = True) -> list[SeedUser]:
    """Read and check a users file against the logical ids of the template's user pools.

    With ``strict`` off (a default file, not one the user named), users of pools the template
    does not have are left out rather than refused: one project file serves any template.

    Raises:
        TemplateError: one sentence naming the file and what to change.
    """
    if path is None:
        return []
    data = read_json_file(path, "users file")
    if not isinstance(data, dict):
        raise TemplateError(f"users file {path} must map user pool logical ids to lists of users.")
    users = []
    for pool, entries in data.items():
        if pool not in pools and not strict:
            continue
        if pool not in pools:
            known = ", ".join(sorted(pools)) or "none"
            raise TemplateError(
                f"users file {path} names {pool!r}, which is not a user pool of the template (pools: {known})."
            )
        if not isinstance(entries, list):
            raise TemplateError(f"users file {path}: {pool} must be a list of users.")
        users.extend(_user(path, pool, entry) for entry in entries)
    return users


def _user(path: Path, pool: str, entry: Any) -> SeedUser:
    if not isinstance(entry, dict) or not isinstance(entry.get("username"), str) or not isinstance(
        entry.get("password"), str
    ):
        raise TemplateError(f"users file {path}: each user of {pool} needs a string username and password.")
    attributes = entry.get("attributes", {})
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise TemplateError(f"users file {path}: attributes of {entry['username']} must map names to strings.")
    sub = entry.get("sub")
    if sub is not None:
        try:
            sub = str(uuid.UUID(sub)) if isinstance(sub, str) else None
        except ValueError:
            sub = None
        if sub is None or sub != entry["sub"]:  # lower case, with hyphens, as Cognito writes them
            raise TemplateError(
                f"users file {path}: sub of {entry['username']} must be a UUID such as "
                "7d8ca528-4931-4254-9273-ea5ee853f271, as Cognito's are."
            )
    return SeedUser(pool, entry["username"], entry["password"], attributes, sub)


def create_users(client: Any, users: list[SeedUser], pools: Mapping[str, str]) -> dict[str, str]:
    """Create each user that does not exist yet; return each username's ``sub``.

    ``pools`` maps the pools' logical ids to their ids in the emulator.

    Raises:
        TemplateError: a user the pool refuses (a password its policy rejects, say), named.
    """
    subs: dict[str, str] = {}
    for user in users:
        pool_id = pools[user.pool]
        try:
            try:
                created = client.admin_create_user(
                    UserPoolId=pool_id,
                    Username=user.username,
                    MessageAction="SUPPRESS",
                    UserAttributes=[{"Name": name, "Value": value} for name, value in user.attributes.items()],
                )
                attributes = created["User"]["Attributes"]
                status = created["User"]["UserStatus"]
                if user.sub is not None:
                    _set_sub(client, pool_id, user)
                    attributes = [a for a in attributes if a["Name"] != "sub"] + [{"Name": "sub", "Value": user.sub}]
            except client.exceptions.UsernameExistsException:
                existing = client.admin_get_user(UserPoolId=pool_id, Username=user.username)
                attributes, status = existing["UserAttributes"], existing["UserStatus"]
            if status != "CONFIRMED":
                client.admin_set_user_password(
                    UserPoolId=pool_id, Username=user.username, Password=user.password, Permanent=True
                )
        except client.exceptions.ClientError as exc:
            raise TemplateError(f"user {user.username} of {user.pool} could not be created: {exc}") from None
        subs[user.username] = next((a["Value"] for a in attributes if a["Name"] == "sub"), "")
    return subs


def _set_sub(client: Any, pool_id: str, user: SeedUser) -> None:
    # No Cognito API sets a sub: the emulator serves a route of its own for it.
    request = urllib.request.Request(
        f"{client.meta.endpoint_url}{SET_SUB_PATH}", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"UserPoolId": pool_id, "Username": user.username, "Sub": user.sub}).encode(),
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            pass
    except urllib.error.HTTPError as exc:
        reason = json.loads(exc.read() or b"{}").get("message", exc.reason)
        raise TemplateError(
            f"user {user.username} of {user.pool} could not be given sub {user.sub}: {reason}."
        ) from None
