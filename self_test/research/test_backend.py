"""The job backends' contract, on the local pool: each job its own seed, results in item order
whatever the worker count, the caller's random streams left alone, and ray never imported."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.errors import BotError, ConfigError
from bot.research.backend import LocalBackend, make_backend, map_jobs
from bot.research.jobs import current_seed, job_seed, run_seeded
from bot.research.optimizer import Param, ParameterOptimizer
from self_test.conftest import ROOT


def draw(item: int) -> tuple[int, float, float]:
    """A job whose value depends on its seed: what a training run of one seed looks like."""
    return item, random.random(), float(np.random.rand())


def test_every_job_has_its_own_seed_and_the_same_value_on_any_worker_count():
    items = list(range(12))
    one = map_jobs(draw, items, backend="local", workers=1, seed=5, progress=False)
    two = map_jobs(draw, items, backend="local", workers=2, seed=5, progress=False)
    assert [r.index for r in one] == items and [r.value[0] for r in two] == items   # item order
    assert [r.value for r in one] == [r.value for r in two]
    assert len({r.value[1] for r in one}) == len(items)                 # no two jobs share a seed
    random.seed(job_seed(5, 3))
    assert one[3].value[1] == random.random()                           # job 3 ran with its own seed
    other = map_jobs(draw, items, backend="local", workers=2, seed=6, progress=False)
    assert [r.value for r in other] != [r.value for r in one]
    assert all(r.node == "local" and r.seconds >= 0 for r in two)


def torch_draw(item: int) -> tuple[float, int]:
    import torch  # the test loads torch before the job, so the backend seeded it
    return float(torch.rand(1)), current_seed()


def test_torch_is_seeded_too_and_a_job_knows_its_seed():
    import torch

    a, b = run_seeded(torch_draw, 0, 5), run_seeded(torch_draw, 0, 5)
    assert a == b and a[1] == 5 and run_seeded(torch_draw, 0, 6)[0] != a[0]
    torch.manual_seed(1)
    state = torch.get_rng_state()
    run_seeded(torch_draw, 0, 5)
    assert torch.equal(torch.get_rng_state(), state)                    # the caller's torch stream kept
    with pytest.raises(RuntimeError, match="running as a job"):
        current_seed()


def test_explicit_seeds_and_the_callers_streams_are_kept():
    random.seed(1)
    np.random.seed(1)
    before = (random.random(), float(np.random.rand()))
    random.seed(1)
    np.random.seed(1)
    out = map_jobs(draw, [0, 1], backend="local", workers=1, seeds=[42, 42], progress=False)
    assert out[0].value[1:] == out[1].value[1:]                         # same seed, same draws
    assert (random.random(), float(np.random.rand())) == before         # caller's streams untouched
    assert run_seeded(draw, 7, 42) == (7, *out[0].value[1:])


class DiesOnce:
    """An objective whose worker process dies (os._exit) the first time it sees `victim`
    (`always`: every time)."""

    def __init__(self, marker: Path, victim: dict, always: bool = False) -> None:
        self.marker, self.victim, self.always = marker, victim, always

    def __call__(self, params: dict) -> float:
        if params == self.victim and (self.always or not self.marker.exists()):
            self.marker.write_text(str(os.getpid()))
            os._exit(1)                      # the worker is lost mid-trial, no exception, no reply
        return float(params["fast"] * 10 + params["slow"])


SPACE2 = [Param("fast", "int", low=4, high=16, step=4), Param("slow", "int", low=20, high=60, step=20)]


def test_a_local_worker_lost_mid_trial_is_retried(tmp_path):
    marker, victim = tmp_path / "died", {"fast": 8, "slow": 40}
    res = ParameterOptimizer(SPACE2, DiesOnce(marker, victim), method="grid", jobs=2, progress=False).run()
    assert int(marker.read_text()) != os.getpid()                     # a pool worker really died
    assert len(res.trials) == 12 and all(t.score == t.params["fast"] * 10 + t.params["slow"] for t in res.trials)
    doomed = LocalBackend(2, retries=1)                                 # a job that kills every worker
    doomed.open(DiesOnce(marker, victim, always=True))
    try:
        with pytest.raises(BotError, match="lost 2 times"):
            list(doomed.map([victim], [1]))
    finally:
        doomed.close()


def test_a_backend_refuses_what_it_cannot_do():
    with pytest.raises(ConfigError, match="not known"):
        make_backend("spark")
    with pytest.raises(ConfigError, match="--ray-address needs --backend ray"):
        make_backend("local", address="auto")
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        LocalBackend(0)
    b = LocalBackend(1)
    with pytest.raises(RuntimeError, match="open"):
        list(b.map([1], [1]))


def test_the_local_path_never_imports_ray():
    code = ("import sys; import bot.cli.optimize, bot.research.optimizer; "
            "from bot.research.backend import map_jobs; "
            "map_jobs(abs, [-1, -2], backend='local', workers=2, progress=False); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True).stdout.strip()
    assert out == "False"


def test_backend_ray_without_ray_installed_is_one_clear_line(tmp_path):
    # the command as a user types it, in an interpreter where `import ray` fails
    code = ("import sys; sys.modules['ray'] = None; from bot.__main__ import main; "
            f"raise SystemExit(main(['--env-file', {str(tmp_path / 'none.env')!r}, 'optimize', '--space', "
            f"{str(ROOT / 'examples' / 'space_sma.yaml')!r}, '--backend', 'ray', '--out', {str(tmp_path / 'o')!r}]))")
    env = {"PATH": "/usr/bin:/bin", "HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "b.log")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    text = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and "needs the optional package ray: pip install -r requirements-ray.txt" in lines[0], text
    assert not (tmp_path / "o").exists()          # refused before any work or file
