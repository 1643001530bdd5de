"""``--host 0.0.0.0``: every server listens on all interfaces, and everything is still reached on 127.0.0.1.

Only loopback traffic: the test connects to 127.0.0.1 alone, as a client on the same machine
(or inside the same container) does.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from cryptography import x509
from websockets.asyncio.client import connect

WAIT = 10.0


def listening_addresses(pids: list[int]) -> dict[int, str]:
    """Port -> bound address of every TCP socket these processes listen on."""
    bound = {}
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                bound[conn.laddr.port] = conn.laddr.ip
    return bound


def test_a_stack_bound_to_every_interface_serves_its_clients_and_workers_on_127_0_0_1(run_stack, fixtures):
    template = fixtures / "sam_websocket_api" / "template.yaml"
    with run_stack(template, host="0.0.0.0", code_check_interval=None) as stack:
        info = stack.info
        api = info.apis[0]
        ws, wss, aws = urlsplit(api.websocket_url), urlsplit(api.secure_websocket_url), urlsplit(info.aws_endpoint)
        emulator_pid = stack.stack.emulator._proc.pid  # type: ignore[union-attr]
        bound = listening_addresses([psutil.Process().pid, emulator_pid])

        certificate = x509.load_pem_x509_certificate(Path(info.ca_bundle).read_bytes())
        trusted = ssl.create_default_context(cafile=info.ca_bundle)

        async def scenario() -> tuple[Any, Any, Any]:
            # The authorizer runs on $connect; echo is a two-way route; reply posts back through
            # https://{domainName}/{stage}, from a worker, over TLS.
            async with connect(api.websocket_url + "?token=user-ann", open_timeout=WAIT) as client:
                await client.send(json.dumps({"action": "echo", "text": "hi"}))
                echoed = json.loads(await asyncio.wait_for(client.recv(), WAIT))
                await client.send(json.dumps({"action": "reply"}))
                replied = json.loads(await asyncio.wait_for(client.recv(), WAIT))
            # A TLS client on this machine trusts the stack's certificate for 127.0.0.1.
            async with connect(api.secure_websocket_url + "?token=user-bo", ssl=trusted, open_timeout=WAIT) as client:
                await client.send(json.dumps({"action": "echo", "text": "over TLS"}))
                secure = json.loads(await asyncio.wait_for(client.recv(), WAIT))
            return echoed, replied, secure

        echoed, replied, secure = asyncio.run(asyncio.wait_for(scenario(), 60))

    assert info.host == "0.0.0.0"
    assert {ws.hostname, wss.hostname, aws.hostname} == {"127.0.0.1"}
    assert {bound[ws.port], bound[wss.port], bound[aws.port]} == {"0.0.0.0"}
    assert echoed["body"] == {"action": "echo", "text": "hi"}
    assert echoed["authorizer"]["user"] == "ann"
    assert replied == {"replied": True, "endpoint": f"https://127.0.0.1:{wss.port}/{api.stage}"}
    assert secure["body"]["text"] == "over TLS"
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


def test_the_default_host_listens_on_127_0_0_1_only(sam_app):
    api = sam_app.info.apis[0]
    emulator_pid = sam_app.stack.emulator._proc.pid
    bound = listening_addresses([psutil.Process().pid, emulator_pid])

    ports = [urlsplit(url).port for url in (api.websocket_url, api.secure_websocket_url, sam_app.info.aws_endpoint)]

    assert sam_app.info.host == "127.0.0.1"
    assert {bound[port] for port in ports} == {"127.0.0.1"}
