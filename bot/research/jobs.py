"""A research job's own seed and its result, shared by every backend (bot/research/backend.py).

`job_seed(base, *parts)` derives a job's seed from the run's seed and what identifies the job,
the same in every process (no `hash()` salt). `run_seeded(fn, item, seed)` calls `fn(item)` with
`random`, NumPy and torch (when loaded) seeded, then puts the caller's streams back; a job that
loads a library of its own (torch imported inside the job, an environment) seeds it with
`current_seed()`.
`JobResult` is what a backend streams back for each finished job.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["JobResult", "job_seed", "run_seeded", "current_seed"]

_SEED: list[int] = []          # the seeds of the jobs running in this process (innermost last)


@dataclass(frozen=True)
class JobResult:
    """One finished job: its position in the items, its value, where it ran and how long it computed."""

    index: int
    value: Any
    node: str
    seconds: float


def job_seed(base: int, *parts: Any) -> int:
    """A job's own seed from the run's seed and what identifies the job (stable across processes)."""
    digest = hashlib.sha256(repr((int(base), parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def run_seeded(fn: Callable[[Any], Any], item: Any, seed: int) -> Any:
    """`fn(item)` with `random`, NumPy and torch (if loaded) seeded by `seed`; their states are
    put back afterwards, so a job run in the caller's process leaves the caller's streams alone."""
    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.get_rng_state() if torch is not None else None
    random.seed(seed)
    np.random.seed(seed)
    if torch is not None:
        torch.manual_seed(seed)
    _SEED.append(seed)
    try:
        return fn(item)
    finally:
        _SEED.pop()
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch is not None and torch_state is not None:
            torch.set_rng_state(torch_state)


def current_seed() -> int:
    """The seed of the job running now (inside `run_seeded`); a RuntimeError outside a job."""
    if not _SEED:
        raise RuntimeError("current_seed() is for code running as a job (run_seeded / a backend)")
    return _SEED[-1]
