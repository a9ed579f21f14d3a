"""Loaded by Python at start-up when this folder is on PYTHONPATH (see self_test/fakes/fast_clock.py):
with FAKE_CLOCK set, `time.time` and `time.time_ns` read the test's fast clock."""

import os
import time

_spec = os.environ.get("FAKE_CLOCK")
if _spec:
    _start_s, _speed, _real0 = (float(x) for x in _spec.split(","))
    _real_time = time.time

    def _fast() -> float:
        return _start_s + (_real_time() - _real0) * _speed

    time.time = _fast
    time.time_ns = lambda: int(_fast() * 1e9)
