#!/usr/bin/env python3
"""Create the demo users (alice, bob) and a demo conversation, or remove them with --remove.

Local stack by default (reads the state file ``wsstack up`` writes; the stack has created
the users from users.local.json before it is ready); a deployed stack with ``--stack-name``.
The users are those of users.local.json either way. Messages go through the real WebSocket
API, so what they leave behind is exactly what the app would: one exchange delivered live,
one message waiting for bob. A conversation already there (the local stack keeps its data
across restarts) is left as it is.
``--remove`` deletes the demo users and everything stored about them (their conversations
whole, messages, connections), found by key and index, never by scanning a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

try:
    from botocore.exceptions import BotoCoreError, ClientError

    from chatclient import ChatSession, Target, conversation_id, ensure_user, remove_user_data, sign_in
except ModuleNotFoundError as missing:  # run by an interpreter without the project installed
    sys.exit(f"scripts/seed.py: {missing.name} is not installed for {sys.executable}; run it with "
             ".venv/bin/python scripts/seed.py (`make up` or `make test` creates .venv).")

#: The demo users, as ``wsstack up`` creates them: username -> (password, attributes).
DEMO_USERS = {
    user["username"]: (user["password"], user["attributes"])
    for user in json.loads((Path(__file__).resolve().parent.parent / "users.local.json").read_text())["UserPool"]
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-file", default=os.environ.get("WSSTACK_STATE_FILE", ".local/stack.json"),
                        help="local stack state file (default: %(default)s)")
    parser.add_argument("--stack-name", help="seed a deployed CloudFormation stack instead")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--password", help="password for the demo users (default: users.local.json's)")
    parser.add_argument("--remove", action="store_true",
                        help="remove the demo users and their data instead of creating them")
    args = parser.parse_args()

    try:
        target = (Target.from_cloudformation(args.stack_name, args.region) if args.stack_name
                  else Target.from_state_file(Path(args.state_file)))
    except (BotoCoreError, ClientError) as exc:  # no credentials, no such stack, ...
        sys.exit(f"scripts/seed.py: cannot read stack {args.stack_name!r} in {args.region}: {exc}")
    if args.remove:
        tables = (Target.tables_from_cloudformation(args.stack_name, args.region) if args.stack_name
                  else Target.tables_from_state_file(Path(args.state_file)))
        return remove(target, tables)
    passwords = {username: args.password or password for username, (password, _) in DEMO_USERS.items()}
    for username, (_, attrs) in DEMO_USERS.items():
        ensure_user(target, username, passwords[username], name=attrs["name"], email=attrs["email"])
    alice, bob = (sign_in(target, u, passwords[u]) for u in ("alice", "bob"))
    conversation = conversation_id(alice.sub, bob.sub)
    print(f"  Demo users alice and bob (password {passwords['alice']}): sub {alice.sub} and {bob.sub}")
    site = None if args.stack_name else json.loads(Path(args.state_file).read_text()).get("site_url")
    if site:  # `wsstack up --site web`, as `make up` runs it
        print(f"  Web chat   {site}  (open it in two windows, one private, and sign in as alice and as bob)")
    if has_conversation(target, alice.id_token, conversation):
        # The local stack keeps its data across restarts: `make up` seeds once, not once per start.
        print(f"  Demo conversation {conversation} (kept from the last run)\n")
        return 0

    with ChatSession(target, alice.id_token) as a:
        with ChatSession(target, bob.id_token) as b:
            a.send_message(conversation, bob.sub, "Hi Bob! This is the demo conversation.")
            # Each session confirms what it reads (ackMessages), as the app does: that
            # confirmation is what turns the sender's ✓ into ✓✓.
            b.receive_until("message")
            a.receive_until("status")
            b.send_message(conversation, alice.sub, "Hi Alice, got it.")
            a.receive_until("message")
            b.receive_until("status")  # bob stays until his reply is delivered
        # bob is offline now: this one waits for his next syncMessages.
        a.send_message(conversation, bob.sub, "Sent while you were away: sync to see me.")
        a.receive_until("ack")

    print(f"  Demo conversation {conversation} (one message waits for bob's syncMessages)\n")
    return 0


def has_conversation(target: Target, id_token: str, conversation: str, pages: int = 20) -> bool:
    """Whether the signed-in user's conversations (the first ``pages`` pages) include ``conversation``."""
    with ChatSession(target, id_token, confirm=False) as session:
        cursor = None
        for _page in range(pages):
            session.send("listConversations", limit=50, **({"cursor": cursor} if cursor else {}))
            found = session.receive_until("conversations")
            if any(c["conversationId"] == conversation for c in found["conversations"]):
                return True
            cursor = found.get("cursor")
            if not found.get("hasMore") or not cursor:
                return False
    return False


def remove(target: Target, tables: dict[str, str]) -> int:
    """Delete the demo users and their data; say what went."""
    print("  Removed")
    for username in DEMO_USERS:
        # No sub given: it is looked up from Cognito (and nothing is stored for a missing user).
        print(f"    {remove_user_data(target, tables, None, username)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
