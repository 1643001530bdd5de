"""The emulator's data on disk: moto's DynamoDB and Cognito backends, pickled.

The emulator child (:mod:`wsstack.emulator_server`) restores a snapshot before it serves its
first request and writes one when it stops, so tables keep their items, and user pools, app
clients and users their ids and ``sub`` values, across restarts.

A snapshot file holds two pickles, one after the other: a small header (format version, moto
and Python versions, when it was written), then the backends, as ``{(module, attribute):
{account: {region: backend}}}``. The header is read first, so a snapshot of another moto
version is refused before any of its objects are built. Unpickling can run code the file
names: a snapshot is trusted like the project's own code (it lives in the project's
``.local/``); never restore one from elsewhere.

Only the standard library is imported at module level: moto is imported on first use, as
in the emulator child itself.
"""

from __future__ import annotations

import copyreg
import datetime
import functools
import importlib
import io
import os
import pickle
import platform
import time
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT", "PERSISTED_BACKENDS", "SNAPSHOT_NAME", "Unreadable", "import_backends", "load", "save", "set_aside",
]

#: The version of the file layout; a snapshot of another version is set aside.
FORMAT = 1

#: The snapshot's file name in a data folder.
SNAPSHOT_NAME = "moto.pickle"

#: The backends kept: those of the services the stack creates resources in. Other services
#: a function may use start empty on every run.
PERSISTED_BACKENDS = (
    ("moto.dynamodb.models", "dynamodb_backends"),
    ("moto.cognitoidp.models", "cognitoidp_backends"),
)


class Unreadable(Exception):
    """A snapshot that cannot be restored; the message says why, in a few words."""


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


@functools.lru_cache(maxsize=8)
def _rsa_key(pem: bytes, parameters: tuple[tuple[str, str], ...]) -> Any:
    """Rebuild a joserfc RSA key (the inverse of :func:`_reduce_rsa_key`).

    Cached: every pool holds the same key, and loading one costs about 40 ms.
    """
    from joserfc import jwk

    return jwk.RSAKey.import_key(pem, parameters=dict(parameters))


def _reduce_rsa_key(key: Any) -> tuple[Any, tuple[bytes, tuple[tuple[str, str], ...]]]:
    # Every user pool holds the key its tokens are signed with (moto loads one bundled key),
    # and cryptography's key objects cannot be pickled. Its PEM form can, and loads three
    # times faster than the bundled JWK, which lacks the primes (they are recomputed).
    parameters = tuple(sorted((k, v) for k, v in key.as_dict(private=False).items() if k not in ("kty", "n", "e")))
    return _rsa_key, (key.as_pem(private=True), parameters)


def _limited_size_dict(attributes: dict[str, Any]) -> Any:
    """Rebuild an item's attributes (the inverse of :func:`_reduce_limited_size_dict`)."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    rebuilt = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(rebuilt, attributes)
    return rebuilt


def _reduce_limited_size_dict(attributes: Any) -> tuple[Any, tuple[dict[str, Any]]]:
    # An item's attributes check the item's whole size on every key set, which unpickling
    # does key by key: restoring 10,000 messages took 0.6 s in that check alone. The sizes
    # were checked when the items were written.
    return _limited_size_dict, (dict(attributes),)


def _pickler(file: io.BufferedWriter) -> pickle.Pickler:
    from joserfc import jwk
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {
        **copyreg.dispatch_table, jwk.RSAKey: _reduce_rsa_key, LimitedSizeDict: _reduce_limited_size_dict,
    }
    return pickler


def import_backends() -> None:
    """Import the kept services' models (most of what a restore costs on a small snapshot)."""
    for module, _name in PERSISTED_BACKENDS:
        importlib.import_module(module)


def _backend_dicts() -> list[tuple[tuple[str, str], Any]]:
    return [((module, name), getattr(importlib.import_module(module), name)) for module, name in PERSISTED_BACKENDS]


def save(path: Path) -> int:
    """Write the emulator's backends to ``path`` atomically; return the file's size in bytes.

    The caller holds the emulator's request lock, so no request is half in the snapshot. The
    file is written next to ``path`` under a temporary name, flushed to disk, then renamed
    over ``path``: a reader (or a crash) sees the old snapshot or the new one, never a part.
    """
    # Plain dicts of the backends themselves: moto's BackendDict and AccountSpecificBackend
    # carry per-process ids and caches, and are rebuilt on restore (see load()).
    body = {
        key: {account: dict(regions) for account, regions in backends.items()}
        for key, backends in _backend_dicts()
    }
    header = {
        "format": FORMAT,
        "moto": _moto_version(),
        "python": platform.python_version(),
        "saved_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            pickle.dump(header, file, protocol=pickle.HIGHEST_PROTOCOL)
            _pickler(file).dump(body)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename itself reaches the disk with the folder's entry.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path.stat().st_size


def load(path: Path) -> dict[str, int]:
    """Restore the backends saved in ``path``; return counts of what came back.

    Nothing is installed unless the whole file was read: a snapshot that fails half-way
    leaves the emulator empty, as a fresh start.

    Raises:
        FileNotFoundError: there is no snapshot.
        Unreadable: the file is not a snapshot this version can restore.
    """
    with open(path, "rb") as file:
        try:
            header = pickle.load(file)
        except Exception as exc:
            raise Unreadable(f"not a snapshot: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise Unreadable(f"snapshot format {found!r}, expected {FORMAT}")
        if header.get("moto") != _moto_version():
            raise Unreadable(f"written by moto {header.get('moto')}, this is moto {_moto_version()}")
        try:
            body = pickle.load(file)
        except Exception as exc:
            raise Unreadable(f"{type(exc).__name__}: {exc}") from None
    wanted = dict(_backend_dicts())
    if not isinstance(body, dict) or not set(body) <= set(wanted) or not all(
        isinstance(accounts, dict) and all(isinstance(regions, dict) for regions in accounts.values())
        for accounts in body.values()
    ):
        raise Unreadable("unexpected contents")
    counts = {"tables": 0, "items": 0, "user_pools": 0, "users": 0}
    for key, accounts in body.items():
        backends = wanted[key]
        for account, regions in accounts.items():
            # Indexing the BackendDict creates the account's AccountSpecificBackend and
            # registers the BackendDict as in use, exactly as a request would; the restored
            # region backends then replace what a request would have created.
            account_backends = backends[account]
            for region, backend in regions.items():
                dict.__setitem__(account_backends, region, backend)
                tables = getattr(backend, "tables", {})
                counts["tables"] += len(tables)
                counts["items"] += sum(_item_count(table) for table in tables.values())
                pools = getattr(backend, "user_pools", {})
                counts["user_pools"] += len(pools)
                counts["users"] += sum(len(getattr(pool, "users", ())) for pool in pools.values())
    return counts


def _item_count(table: Any) -> int:
    try:
        return len(table)
    except TypeError:
        return 0


def set_aside(path: Path) -> Path:
    """Rename an unreadable snapshot out of the way (``<name>.unreadable-<time>``); the new path."""
    target = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, target)
    return target
