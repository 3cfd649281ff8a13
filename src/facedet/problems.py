"""Bad-input bookkeeping shared by every stage: skip and report by default, fail in strict mode."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

EXCERPT = 24  # characters of a file quoted in a message, at most


def excerpt(text: object, limit: int = EXCERPT) -> str:
    """At most ``limit`` characters of what a file holds (or an error says), unprintable ones as '?',
    for messages."""
    text = "".join(c if c.isprintable() else "?" for c in str(text)[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DataError(ValueError):
    """Raised for bad input in strict mode (or when nothing usable is left)."""


@dataclass(frozen=True)
class Problem:
    """One problem with one input file. `level` is "error" (the item was dropped) or "warning"."""

    file: str
    problem: str
    level: str = "error"


@dataclass
class ProblemReport:
    """Collects every problem of one stage run; `raise_if_strict` fails listing all of them."""

    stage: str
    problems: list[Problem] = field(default_factory=list)

    def error(self, file: str | Path, problem: str) -> None:
        self._add(Problem(str(file), problem, "error"))

    def warning(self, file: str | Path, problem: str) -> None:
        self._add(Problem(str(file), problem, "warning"))

    def _add(self, item: Problem) -> None:
        self.problems.append(item)
        (log.error if item.level == "error" else log.warning)("%s: %s", item.file, item.problem)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def raise_if_strict(self, strict: bool) -> None:
        if strict and self.problems:
            lines = "\n".join(f"  {p.level}: {p.file}: {p.problem}" for p in self.problems)
            raise DataError(f"{self.stage}: {len(self.problems)} problem(s) in strict mode:\n{lines}")

    def to_dict(self, **summary: object) -> dict:
        return {
            "stage": self.stage,
            "summary": {**summary, "errors": len(self.errors), "warnings": len(self.problems) - len(self.errors)},
            "problems": [asdict(p) for p in self.problems],
        }

    def write(self, path: Path, **summary: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(**summary), indent=2) + "\n")
