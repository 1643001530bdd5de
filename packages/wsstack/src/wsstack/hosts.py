"""Where the stack listens (``--host``) and the addresses its URLs name.

Every server of the stack (each gateway's port and TLS port, the AWS emulator) binds one
address: 127.0.0.1 by default, so nothing is reachable from another machine, or 0.0.0.0 in a
container or to let a phone on the same network reach a laptop. A URL cannot name 0.0.0.0, so
the state file, the banner and the Lambda workers (``domainName``, ``AWS_ENDPOINT_URL``) then
use 127.0.0.1, which reaches the same servers from this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket

__all__ = [
    "ALL_INTERFACES",
    "DEFAULT_HOST",
    "certificate_names",
    "host_argument",
    "is_loopback",
    "outward_address",
    "url_host",
]

#: The default: this machine only.
DEFAULT_HOST = "127.0.0.1"
#: Every IPv4 interface of this machine.
ALL_INTERFACES = "0.0.0.0"

#: TEST-NET-1 (RFC 5737): an address that is never routed anywhere, used only to ask the
#: kernel which local address a connection would leave from.
_PROBE_ADDRESS = ("192.0.2.1", 9)


def host_argument(text: str) -> str:
    """``argparse`` type of ``--host``: an IPv4 address, e.g. 127.0.0.1 or 0.0.0.0."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv4 address; give 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ) from None


def is_loopback(host: str) -> bool:
    """True when servers bound to ``host`` are reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host that URLs name for servers bound to ``host``: 127.0.0.1 for 0.0.0.0."""
    return DEFAULT_HOST if host == ALL_INTERFACES else host


def outward_address() -> str | None:
    """This machine's address on its default route, or None when it has none.

    Connecting a UDP socket sends nothing: the kernel only picks the local address a packet
    would leave from. That is the address another device on the same network uses.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(_PROBE_ADDRESS)
        address = str(probe.getsockname()[0])
        if address != ALL_INTERFACES and not ipaddress.ip_address(address).is_loopback:
            return address
    return None


def certificate_names(host: str, outward: str | None = None) -> list[str]:
    """The names the gateways' TLS certificate must cover when bound to ``host``.

    127.0.0.1 and ``localhost`` always (the ``domainName`` workers and local clients use); the
    bound address when it is another one; and, bound to every interface, ``outward`` (see
    :func:`outward_address`), the address other devices use.
    """
    names = [DEFAULT_HOST, "localhost"]
    if host == ALL_INTERFACES:
        names += [outward] if outward else []
    elif host != DEFAULT_HOST:
        names.append(host)
    return list(dict.fromkeys(names))
