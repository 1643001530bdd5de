"""What the fork server prepares, read from the functions' code."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from wsstack.forkserver import Preload, scan_code


def test_scan_finds_powertools_and_the_boto3_services_named_in_the_code(tmp_path):
    # GIVEN a code folder with a handler, a module one level below and a vendored-looking deeper one
    (tmp_path / "app.py").write_text(
        "import boto3\nfrom aws_lambda_powertools import Logger\n"
        "table = boto3.resource('dynamodb').Table('t')\n"
        "idp = session.client(service_name=\"cognito-idp\")\n"
    )
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "post.py").write_text('api = boto3.client(\n    "apigatewaymanagementapi", endpoint_url=url)\n')
    (tmp_path / "lib" / "deep").mkdir()
    (tmp_path / "lib" / "deep" / "x.py").write_text("boto3.client('s3')\n")
    (tmp_path / "notes.txt").write_text("boto3.client('sqs')\n")

    preload = scan_code(str(tmp_path))

    # THEN it lists what the handler's code names, not what lies deeper or outside .py files
    assert preload == Preload(True, frozenset({"cognito-idp", "apigatewaymanagementapi"}), frozenset({"dynamodb"}))


def test_preloads_combine_and_survive_their_trip_to_the_fork_server():
    a = Preload(False, frozenset({"dynamodb"}), frozenset())
    b = Preload(True, frozenset({"sqs"}), frozenset({"dynamodb"}))

    combined = a | b

    assert combined == Preload(True, frozenset({"dynamodb", "sqs"}), frozenset({"dynamodb"}))
    assert Preload.from_json(combined.to_json()) == combined
    assert Preload.from_json("{}") == Preload()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_scan_of_any_source_text_names_only_well_formed_services(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("code")
    (folder / "app.py").write_text(text, encoding="utf-8", errors="surrogatepass")

    preload = scan_code(str(folder))

    for name in preload.clients | preload.resources:
        assert name and len(name) <= 63 and all(c.islower() or c.isdigit() or c == "-" for c in name)
    json.loads(preload.to_json())
