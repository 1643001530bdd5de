"""``python -m wsstack.health``, the container's health check: healthy while the stack in the state file serves."""

from __future__ import annotations

from pathlib import Path

from wsstack.health import main


def test_a_serving_stack_is_healthy_and_a_stopped_one_is_not(run_stack, fixtures, tmp_path, capsys):
    state = tmp_path / "stack.json"
    with run_stack(fixtures / "sam_websocket_api" / "template.yaml", code_check_interval=None) as stack:
        state.write_text(stack.info.to_json())
        serving = main(["--state-file", str(state)])
        serving_said = capsys.readouterr().out

    stopped = main(["--state-file", str(state), "--timeout", "1"])
    stopped_said = capsys.readouterr().out

    assert (serving, serving_said) == (0, "wsstack: healthy\n")
    assert stopped == 1
    assert stopped_said.startswith("wsstack: unhealthy: no answer from AWS emulator at http://127.0.0.1:")
    assert "NotesApi stage test at http://127.0.0.1:" in stopped_said


def test_no_state_file_is_unhealthy_and_says_why(tmp_path: Path, capsys):
    assert main(["--state-file", str(tmp_path / "missing.json")]) == 1
    assert "unhealthy: no state file at" in capsys.readouterr().out

    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert main(["--state-file", str(tmp_path / "other.json")]) == 1
    assert "is not a wsstack state file" in capsys.readouterr().out
