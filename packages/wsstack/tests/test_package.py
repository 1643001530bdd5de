"""wsstack as a user installs it: a wheel built from this folder, in a virtualenv of its own.

Building the wheel fetches setuptools from the package index pip is configured with, as any
``pip install`` of the folder does (``-m "not package"`` leaves these tests out when there is
none). Installing it downloads nothing: its dependencies come from the
interpreter running these tests, made visible to the new virtualenv by a ``.pth`` file (which
adds that folder to ``sys.path`` without running the ``.pth`` files in it, so nothing installed
there in editable mode, wsstack itself included, comes along). A full ``pip install`` of the
folder, dependencies and all, is what the README's Install section shows.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = pytest.mark.package

PACKAGE = Path(__file__).resolve().parents[1]
#: Generous: pip builds the wheel in a subprocess, on a machine that may be busy.
PIP_TIMEOUT = 300


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy, so that building leaves nothing (build/, *.egg-info) in the source folder.
    source = out / "src-copy"
    subprocess.run(["cp", "-r", str(PACKAGE), str(source)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        check=True, timeout=PIP_TIMEOUT,
    )
    [built] = out.glob("wsstack-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel installed; its ``bin`` folder."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--ignore-installed", str(wheel)],
        check=True, timeout=PIP_TIMEOUT,
    )
    return env / "bin"


def test_the_wheel_holds_wsstack_only_with_its_command_and_pytest_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entries = archive.read(entry_points).decode()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist") or []

    assert {name.split("/")[0] for name in names if not name.startswith("wsstack-")} == {"wsstack"}
    assert "wsstack = wsstack.cli:main" in entries
    assert "[pytest11]\nwsstack = wsstack.pytest_plugin" in entries
    runtime_requires = [r for r in requires if "extra ==" not in r]  # the `test` extra is for its own tests
    assert not [r for r in runtime_requires if r.lower().startswith(("chat", "aws-lambda-powertools"))]


def test_the_installed_command_and_plugin_work_without_the_chat_app(installed: Path) -> None:
    help_text = subprocess.run([str(installed / "wsstack"), "up", "--help"], capture_output=True, text=True,
                               check=True, timeout=60).stdout
    probe = subprocess.run(
        [str(installed / "python"), "-c",
         "import importlib.util, wsstack, wsstack.pytest_plugin, wsstack.cli\n"
         "print(wsstack.__file__)\n"
         "print([m for m in ('chat', 'chatclient') if importlib.util.find_spec(m)])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()

    assert "--template" in help_text and "template.yaml" in help_text
    assert probe[0].startswith(str(installed.parent)), probe  # the installed copy, not this checkout
    assert probe[1] == "[]"
