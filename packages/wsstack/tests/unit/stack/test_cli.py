"""The command line: limit flags become gateway limits; bad values are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsstack.cli import _data_dir, _limits, build_parser
from wsstack.gateway.core import Limits


def test_limit_flags_override_only_the_limits_given() -> None:
    args = build_parser().parse_args(
        ["up", "--idle-timeout", "2", "--max-connection-duration", "5", "--integration-timeout", "0.5",
         "--max-frame-bytes", "1024", "--max-message-bytes", "4096"]
    )

    assert _limits(args) == Limits(
        idle_timeout=2, max_connection_duration=5, integration_timeout=0.5, max_frame_bytes=1024,
        max_message_bytes=4096,
    )
    assert _limits(build_parser().parse_args(["up"])) is None  # AWS defaults
    assert _limits(build_parser().parse_args(["up", "--idle-timeout", "3"])) == Limits(idle_timeout=3)


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_limit_that_is_not_a_positive_number_is_refused(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["up", "--integration-timeout", value])

    assert exit_.value.code == 2
    assert "--integration-timeout" in capsys.readouterr().err


def test_up_options_default_to_hot_reload_and_text_logs() -> None:
    args = build_parser().parse_args(["up"])

    assert args.hot_reload is True
    assert args.log_format == "text"
    assert build_parser().parse_args(["up", "--no-hot-reload", "--log-format", "json"]).hot_reload is False


def test_each_state_file_has_its_own_data_folder_by_default() -> None:
    parse = build_parser().parse_args

    assert _data_dir(parse(["up"])) == Path(".local/data/stack")
    assert _data_dir(parse(["up", "--state-file", ".local/b.json"])) == Path(".local/data/b")
    assert _data_dir(parse(["up", "--data-dir", "elsewhere"])) == Path("elsewhere")
    assert _data_dir(parse(["up", "--no-persist"])) is None
    assert parse(["up"]).fresh is False and parse(["up", "--fresh"]).fresh is True


def test_no_persist_and_a_data_folder_are_refused_together(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["up", "--no-persist", "--data-dir", "x"])

    assert exit_.value.code == 2
    assert "--data-dir: not allowed with argument --no-persist" in capsys.readouterr().err
