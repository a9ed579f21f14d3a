"""A fast wall clock shared by a test and the `python -m bot` process it starts, so a run over
real 1-minute candles takes seconds instead of minutes.

`FastClock(start_s, speed, real0)` reads `start_s + (time.time() - real0) * speed`: the same
function in the test (the fake Bybit's clock: which candles have closed, the signature's
recv_window check) and in the bot process, where `clock_site/sitecustomize.py` installs it as
`time.time` when FAKE_CLOCK is set in the environment (`FastClock.env()` writes it). Only the wall
clock is sped up: monotonic time, sleeps and timeouts stay real.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["FastClock", "SITE_DIR"]

SITE_DIR = Path(__file__).resolve().parent / "clock_site"
_real_time = time.time


class FastClock:
    def __init__(self, start_s: float, speed: float, real0: float | None = None) -> None:
        self.start_s = float(start_s)
        self.speed = float(speed)
        self.real0 = _real_time() if real0 is None else float(real0)

    def __call__(self) -> float:
        return self.start_s + (_real_time() - self.real0) * self.speed

    def env(self) -> dict[str, str]:
        """Environment for a child process that should read this clock (PYTHONPATH + FAKE_CLOCK)."""
        import os

        path = os.pathsep.join(p for p in (str(SITE_DIR), os.environ.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": path, "FAKE_CLOCK": f"{self.start_s!r},{self.speed!r},{self.real0!r}"}

    @classmethod
    def from_env(cls, value: str) -> FastClock:
        start_s, speed, real0 = (float(x) for x in value.split(","))
        return cls(start_s, speed, real0)
