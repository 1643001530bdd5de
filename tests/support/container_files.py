"""The Dockerfile and docker-compose.yml as tests read them: stages, instructions, services."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"


@dataclass
class Stage:
    """One ``FROM ... AS name`` stage: its base and its instructions in order."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        values = self.all(instruction)
        assert values, f"stage {self.name} has no {instruction}"
        return values[-1]


def stages(path: Path = DOCKERFILE) -> dict[str, Stage]:
    """The Dockerfile's stages by name, bases with ``ARG`` defaults substituted."""
    parser = DockerfileParser(path=str(path))
    bases = iter(parser.parent_images)
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parser.structure:
        if item["instruction"] == "FROM":
            words = item["value"].split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(found))
            current = found[name] = Stage(name, next(bases))
        elif current is not None and item["instruction"] != "COMMENT":
            current.instructions.append((item["instruction"], item["value"]))
    return found


def exec_form(value: str) -> list[str]:
    """A ``CMD``/``HEALTHCHECK CMD`` in exec form (a JSON list), as argv."""
    argv = json.loads(value)
    assert isinstance(argv, list) and all(isinstance(word, str) for word in argv), value
    return argv


def healthcheck_command(stage: Stage) -> list[str]:
    """The argv of the stage's ``HEALTHCHECK ... CMD [...]``."""
    value = stage.last("HEALTHCHECK")
    return exec_form(value[value.index("CMD") + 3:].strip())


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """Each ``COPY``'s sources and destination, relative to the build context and WORKDIR."""
    result = []
    for value in stage.all("COPY"):
        *sources, destination = shlex.split(value)
        result.append(([s for s in sources if not s.startswith("--")], destination))
    return result


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """docker-compose.yml, with its YAML anchors merged."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))
