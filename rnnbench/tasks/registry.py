"""The task registry: one module per task, each exporting TASK (a Task), registered by name."""

from __future__ import annotations

from rnnbench.config import ConfigError
from rnnbench.tasks import (
    adding,
    chars,
    co2,
    copy,
    dates,
    digits,
    draw_digits,
    reverse,
    selective_copy,
    sentiment,
    sine,
    sunspots,
    tagging,
)
from rnnbench.tasks.base import Task

TASKS: dict[str, Task] = {m.TASK.name: m.TASK for m in (sine, adding, copy, chars,
                                                           digits, sunspots, co2, sentiment,
                                                           tagging, dates, reverse,
                                                           draw_digits, selective_copy)}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name[:80]!r} (known: {', '.join(TASKS)})") from None


__all__ = ["TASKS", "get_task"]
