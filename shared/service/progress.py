"""How far along an execution is, from its journal: a pure estimate for the status endpoint.

The unit of work is one Task state (one stage run). The top-level states on the main path (StartAt,
then each ``Next``) are weighed by the Task states they will run: a Task 1, a Parallel the Tasks of
its branches, a Map the Tasks of its item processor (on its shortest path) times the number of items (read from the
recorded output of the state before it, through the Map's ``ItemsPath``; 1 while unknown), any other
state 0. A recorded top-level state counts in full; the one running counts its recorded inner Tasks.
The ETA extrapolates the elapsed time at the rate so far. Both are estimates, not promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.asl.paths import select
from shared.storage.tasks import TransitionRecord

_MAX_RUNNING_PROGRESS = 0.99


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1
    eta_seconds: float | None = None


def _tasks_in(definition: dict[str, Any]) -> int:
    """The Task states one run of a (sub-)machine visits on its shortest path from StartAt: a Choice
    may skip work (enhance's chunk 0 is already matted; the local path mattes inside the render), so
    the lower bound is what every run does; the running state's count is capped at it."""
    states = definition.get("States", {})
    memo: dict[str, int] = {}

    def tasks_from(name: Any, seen: frozenset[str]) -> int:
        if not isinstance(name, str) or name not in states or name in seen:
            return 0
        if name in memo:
            return memo[name]
        state = states[name]
        kind = state.get("Type")
        own = 0
        if kind == "Task":
            own = 1
        elif kind == "Parallel":
            own = sum(_tasks_in(branch) for branch in state.get("Branches", []))
        elif kind == "Map":
            own = _tasks_in(state.get("ItemProcessor") or state.get("Iterator") or {})
        if kind == "Choice":
            nexts = [choice.get("Next") for choice in state.get("Choices", [])] + [state.get("Default")]
            count = min(tasks_from(next_name, seen | {name}) for next_name in nexts if next_name is not None)
        else:
            count = own + tasks_from(state.get("Next"), seen | {name})
        memo[name] = count
        return count

    return tasks_from(definition.get("StartAt"), frozenset())


def _main_path(definition: dict[str, Any]) -> list[str]:
    """Top-level state names from StartAt along ``Next`` (a Choice ends the walk: its path is unknown)."""
    states = definition.get("States", {})
    path: list[str] = []
    name = definition.get("StartAt")
    while isinstance(name, str) and name in states and name not in path:
        path.append(name)
        name = states[name].get("Next")
    return path


def _map_items(state: dict[str, Any], previous_output: Any) -> int | None:
    try:
        data = select(state.get("InputPath") or "$", previous_output)
        items = select(state.get("ItemsPath") or "$", data)
    except Exception:  # a path that does not apply (yet): the item count is unknown
        return None
    return len(items) if isinstance(items, list) else None


def estimate_progress(
    definition: dict[str, Any], transitions: Sequence[TransitionRecord], *, elapsed_seconds: float | None = None
) -> Progress:
    """The fraction of the main path's Task work recorded in ``transitions`` (at most 0.99), and an ETA.

    ``elapsed_seconds``: how long the execution has been running; without it there is no ETA.
    """
    return progress_at(recorded_fraction(definition, transitions), elapsed_seconds)


def recorded_fraction(definition: dict[str, Any], transitions: Sequence[TransitionRecord]) -> float:
    """:func:`estimate_progress`'s fraction, unrounded. It depends on the journal alone, which only
    grows: a caller may keep it for as long as no transition is added."""
    states = definition.get("States", {})
    top_level = {t.state_name: t for t in transitions if "/" not in t.position}
    inner_tasks: dict[str, int] = {}
    for t in transitions:
        if "/" in t.position and t.state_type == "Task":
            owner = t.position.split("#", 1)[0]
            inner_tasks[owner] = inner_tasks.get(owner, 0) + 1

    total = done = 0.0
    previous_output: Any = None
    for name in _main_path(definition):
        state = states[name]
        kind = state.get("Type")
        if kind == "Task":
            weight = 1.0
        elif kind == "Parallel":
            weight = float(sum(_tasks_in(branch) for branch in state.get("Branches", [])))
        elif kind == "Map":
            per_item = _tasks_in(state.get("ItemProcessor") or state.get("Iterator") or {})
            weight = float(per_item * (_map_items(state, previous_output) or 1))
        else:
            weight = 0.0
        total += weight
        if name in top_level:
            done += weight
            previous_output = top_level[name].output
        else:
            done += min(weight, float(inner_tasks.get(name, 0)))
    return 0.0 if total <= 0 else min(_MAX_RUNNING_PROGRESS, done / total)


def progress_at(fraction: float, elapsed_seconds: float | None) -> Progress:
    """The progress shown for :func:`recorded_fraction`'s ``fraction``, with an ETA extrapolated from
    ``elapsed_seconds`` (none without it, or before 5 %)."""
    eta = None
    if elapsed_seconds is not None and fraction >= 0.05:
        eta = round(elapsed_seconds * (1 - fraction) / fraction, 1)
    return Progress(round(fraction, 4), eta)
