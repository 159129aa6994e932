"""Stage timing: one ``[prefopt]`` line per stage with its count and duration, and ``stage_seconds`` for
summary.json (wall seconds per stage, totals over rounds). The one definition of that field.

    with stage_clock() as clock:                            # run() wraps the whole run
        with stage("generate", "round 0 generate") as s:    # any module, no clock passed around
            responses = ...
            s.note = f"{len(responses)} responses"          # -> [prefopt] round 0 generate: 2048 responses (3.1s)
    clock.summary()                                         # {"generate": 3.1, "score": 0.0, ...}
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field

STAGES = ("generate", "score", "reference", "train", "evaluate")  # always in stage_seconds, 0 when not run


@dataclass
class StageClock:
    """Seconds per stage; a stage outside ``STAGES`` (e.g. ``ches``) appears once it has run."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def summary(self) -> dict[str, float]:
        return {name: round(value, 2) for name, value in self.seconds.items()}

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)

    def since(self, mark: dict[str, float]) -> dict[str, float]:
        """Seconds per stage spent after ``mark`` (a ``snapshot``): one round's share, for its record."""
        return {name: round(value - mark.get(name, 0.0), 2) for name, value in self.seconds.items()}

    def add(self, seconds: dict[str, float]) -> None:
        """Count time measured earlier (a round finished by an earlier, resumed run) without printing."""
        for name, value in seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value


@dataclass
class Stage:
    name: str
    label: str
    note: str = ""  # what the stage did: a count ("2048 responses") or a result


_clock: ContextVar[StageClock | None] = ContextVar("prefopt_stage_clock", default=None)
_where: ContextVar[str | None] = ContextVar("prefopt_stage_label", default=None)
FAILED_IN = "prefopt_stage"  # attribute set on an exception that leaves a stage: the stage's label


@contextmanager
def step(label: str) -> Iterator[None]:
    """Name what the run is doing (``load the model``) without timing it: an exception leaving the block is
    labelled with it (``failed_in``), so the one ``error:`` line of a failed run says where it happened."""
    token = _where.set(label)
    try:
        yield
    except BaseException as err:
        if getattr(err, FAILED_IN, None) is None:
            with suppress(AttributeError):  # an exception type with __slots__: the label is lost, the error is not
                setattr(err, FAILED_IN, label)
        raise
    finally:
        _where.reset(token)


def failed_in(err: BaseException) -> str | None:
    """The label of the innermost ``stage``/``step`` the exception left, or None when it left none."""
    return getattr(err, FAILED_IN, None)


def current_clock() -> StageClock:
    """The clock of the enclosing ``stage_clock`` block (a throwaway one outside any)."""
    return _clock.get() or StageClock()


@contextmanager
def stage_clock() -> Iterator[StageClock]:
    """A fresh clock that every ``stage`` inside the block adds to."""
    clock = StageClock()
    token = _clock.set(clock)
    try:
        yield clock
    finally:
        _clock.reset(token)


@contextmanager
def stage(name: str, label: str | None = None) -> Iterator[Stage]:
    """Time the block as stage ``name``; on success print ``[prefopt] label: note (seconds)``."""
    current = Stage(name, label or name)
    start = time.perf_counter()
    with step(current.label):
        yield current
    seconds = time.perf_counter() - start
    clock = _clock.get()
    if clock is not None:
        clock.seconds[name] = clock.seconds.get(name, 0.0) + seconds
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch every process runs the stage; one line
        print(f"[prefopt] {current.label}: {current.note or 'done'} ({seconds:.1f}s)", flush=True)
