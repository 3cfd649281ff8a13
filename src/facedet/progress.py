"""Progress on long work: rich's bar on a terminal; without one (DVC's output, CI, ``nohup``, a pipe)
a plain line every ~30 s saying how far it is, how fast and how long is left."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

EVERY_S = 30.0


def line(what: str, done: int, total: int | None, seconds: float, unit: str = "pictures") -> str:
    """``what: 120/4000 pictures, 3.2 pictures/s, 20 min left``."""
    rate = done / seconds if seconds > 0 else 0.0
    text = f"{what}: {done}/{total} {unit}" if total else f"{what}: {done} {unit}"
    text += f", {rate:.1f} {unit}/s"
    if total and rate > 0:
        text += f", {_duration((total - done) / rate)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Every:
    """True once every ``seconds`` (the first time after ``seconds``): when to print the next line."""

    def __init__(self, seconds: float = EVERY_S) -> None:
        self.seconds = seconds
        self.start = self.last = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def track(
    items: Iterable[T], what: str, total: int | None = None, unit: str = "pictures", every: float = EVERY_S
) -> Iterator[T]:
    """``items`` one by one with progress on stderr: a transient rich bar on a terminal, else
    `line` every ``every`` seconds."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track as rich_track

        yield from rich_track(items, description=what, total=total, transient=True, console=Console(stderr=True))
        return
    clock = Every(every)
    for done, item in enumerate(items, 1):
        yield item
        if clock():
            print(line(what, done, total, clock.elapsed, unit), file=sys.stderr, flush=True)
