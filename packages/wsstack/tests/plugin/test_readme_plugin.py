"""The README's plugin section, run as written: its ini file and its test, in a project made
of the public-style chat app, by a pytest run of their own."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e

#: The package's own folder: its README and its tests' fixture apps.
PACKAGE = Path(__file__).resolve().parents[2]
PUBLIC_CHAT = PACKAGE / "tests" / "fixtures" / "public_chat"


def readme_section() -> str:
    readme = (PACKAGE / "README.md").read_text(encoding="utf-8")
    return readme.split("## Testing your own app with the pytest plugin", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_ini_and_test_pass_against_an_aws_style_app(pytester: pytest.Pytester) -> None:
    section = readme_section()
    [ini] = re.findall(r"```ini\n(.*?)```", section, flags=re.DOTALL)
    [example] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    shutil.copytree(PUBLIC_CHAT, pytester.path, dirs_exist_ok=True)
    (pytester.path / "pytest.ini").write_text(ini)
    pytester.makepyfile(test_app=example)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)

    result.assert_outcomes(passed=1)
