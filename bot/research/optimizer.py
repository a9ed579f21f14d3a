"""Search strategy parameters: grid, random, or a DEAP genetic algorithm; parallel and resumable.

- **Space**: int / float / choice parameters (`Param`), usually read from a YAML file
  (`load_space`, see examples/space_sma.yaml); both live in bot/research/space.py.
- **Objective**: any picklable callable `params -> score` or `params -> (score, info)`; higher is
  better. The default, `FoldObjective` (bot/research/objective.py), backtests the strategy
  on several consecutive folds of the search span and scores the mean of their Sharpe ratios, so
  a setting that shines in one stretch of history and fails in the others does not win. The last
  part of the data (the holdout) is never shown to the search; the winner is judged there.
- **Parallel**: evaluations run on a backend (bot/research/backend.py): a local multiprocessing
  pool of `jobs` workers (OPTIMIZER_JOBS / --jobs), or a Ray cluster (`--backend ray`); the GA
  uses it as DEAP's `toolbox.map`. Each trial has its own seed (from the run's seed and its
  parameters); results stream back as they finish and are put back in order, so the search is
  the same on every backend and whatever the number of workers.
- **Resumable**: after every generation (GA) or batch (grid / random) the whole search state,
  RNG included, is written atomically to the checkpoint file. A killed run started again with the
  same settings continues where it stopped and ends with the same result as an unbroken run.
- **Selection bias**: with many trials the best score is partly luck; `OptimizationResult`
  carries the number of trials and the spread of their Sharpe ratios for the deflated Sharpe
  ratio of the winner (`bot.analysis.metrics.deflated_sharpe`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import pickle
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.research.backend import Backend, LocalBackend
from bot.research.jobs import job_seed
from bot.research.space import (
    Param,
    SpaceFile,
    atomic_write_bytes,
    load_best_params,
    load_space,
    save_best_params,
)

__all__ = ["Param", "Trial", "OptimizationResult", "ParameterOptimizer", "load_space", "SpaceFile",
           "save_best_params", "load_best_params", "METHODS"]

METHODS = ("grid", "random", "ga")


@dataclass(frozen=True)
class Trial:
    """One evaluated parameter set."""

    params: dict[str, Any]
    score: float
    info: dict[str, Any] = field(default_factory=dict)
    node: str = field(default="", compare=False)    # where it ran ("local", or a Ray node id)


@dataclass(frozen=True)
class OptimizationResult:
    """All trials (sorted best first), the winner, and how the search went."""

    method: str
    trials: tuple[Trial, ...]
    evaluations: int            # objective calls, repeats excluded
    generations: int            # GA generations completed (0 for grid / random)
    completed: bool             # False when stopped early (stop_after)
    history: tuple[dict[str, float], ...] = ()

    @property
    def best(self) -> Trial:
        return self.trials[0]

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    def sharpe_variance(self, key: str = "sharpe_pp") -> float | None:
        """Variance of the trials' per-period Sharpe ratios (for the deflated Sharpe), if known."""
        xs = [t.info[key] for t in self.trials if key in t.info and math.isfinite(t.info[key])]
        if len(xs) < 2:
            return None
        m = sum(xs) / len(xs)
        return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)

    def table(self, top: int = 10) -> str:
        if not self.trials:
            return "(no trials)"
        names = list(self.trials[0].params)
        extra = [k for k in ("trades", "return_pct", "max_drawdown_pct") if k in self.trials[0].info]
        head = ["#", "score", *names, *extra]
        rows = [[str(i + 1), f"{t.score:.3f}", *(_fmt(t.params.get(n)) for n in names),
                 *(_fmt(t.info.get(k)) for k in extra)] for i, t in enumerate(self.trials[:top])]
        widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=False))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
        return "\n".join(lines)

    def to_csv(self, path: str | Path) -> None:
        import pandas as pd
        rows = [{"rank": i + 1, "score": t.score, **t.params,
                 **{k: v for k, v in t.info.items() if not isinstance(v, (list, dict))}}
                for i, t in enumerate(self.trials)]
        atomic_write_bytes(Path(path), pd.DataFrame(rows).to_csv(index=False).encode())


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def _call(objective: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    try:
        out = objective(params)
    except (ValueError, ConfigError) as exc:  # a combination the strategy refuses (e.g. fast >= slow)
        return float("-inf"), {"error": str(exc)}
    score, info = (out if isinstance(out, tuple) else (out, {}))
    score = float(score)
    return (score if math.isfinite(score) else float("-inf")), dict(info)


class _Scored:
    """The objective as a backend job: `params -> (score, info)`, a refused combination -> -inf."""

    def __init__(self, objective: Callable[[dict[str, Any]], Any]) -> None:
        self.objective = objective

    def __call__(self, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        return _call(self.objective, params)


class ParameterOptimizer:
    """Grid, random or genetic search of `space` for the highest `objective` score.

    Keyword options: `method` (grid / random / ga), `jobs` (worker processes; 1 = in process),
    `backend` (where trials run, bot/research/backend.py: default a local pool of `jobs`; the
    caller opens and closes one it passes, e.g. a RayBackend shared by walk-forward splits),
    `seed`, `checkpoint` (file; resumed when it exists and belongs to the same search),
    `progress` (tqdm bar), `samples` (random search size), `population`, `generations`,
    `cx_prob`, `mut_prob`, `tournament`, `elite` (GA), `batch` (evaluations between
    checkpoints in grid / random search).
    """

    def __init__(self, space: Iterable[Param], objective: Callable[[dict[str, Any]], Any], *,
                 method: str = "ga", jobs: int = 1, seed: int = 7, checkpoint: str | Path | None = None,
                 progress: bool = True, samples: int = 100, population: int = 50, generations: int = 20,
                 cx_prob: float = 0.6, mut_prob: float = 0.3, tournament: int = 3, elite: int = 2,
                 batch: int | None = None, backend: Backend | None = None) -> None:
        self.space = tuple(space)
        if not self.space:
            raise ConfigError("the search space has no parameters")
        if method not in METHODS:
            raise ConfigError(f"optimisation method {method!r} is not known; allowed: {', '.join(METHODS)}")
        if population < 2 or generations < 0 or samples < 1 or jobs < 1:
            raise ConfigError(f"population ({population}) must be >= 2, generations ({generations}) >= 0, "
                              f"samples ({samples}) >= 1, jobs ({jobs}) >= 1")
        self.objective = objective
        self.method = method
        self.jobs = int(jobs)
        self.seed = int(seed)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.progress = progress
        self.samples, self.population, self.generations = int(samples), int(population), int(generations)
        self.cx_prob, self.mut_prob = float(cx_prob), float(mut_prob)
        self.tournament, self.elite = int(tournament), min(int(elite), int(population) - 1)
        self.batch = int(batch or max(16, 4 * self.jobs))
        self._cache: dict[tuple, tuple[float, dict[str, Any]]] = {}
        self.backend = backend
        self._runner: Backend | None = None
        self._where: dict[tuple, str] = {}           # trial -> the node that ran it
        self._bar: Any = None

    # -- plumbing ------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed: the space, method, seed and GA sizes."""
        desc = json.dumps({"space": [repr(p) for p in self.space], "method": self.method, "seed": self.seed,
                           "samples": self.samples, "population": self.population,
                           "cx": self.cx_prob, "mut": self.mut_prob, "tournament": self.tournament,
                           "elite": self.elite, "batch": self.batch}, sort_keys=True)
        return hashlib.sha256(desc.encode()).hexdigest()[:16]

    def _key(self, genes: list[Any]) -> tuple:
        return tuple(genes)

    def _params(self, genes: list[Any]) -> dict[str, Any]:
        return {p.name: g for p, g in zip(self.space, genes, strict=False)}

    def _evaluate(self, genomes: list[list[Any]]) -> list[tuple[float, dict[str, Any]]]:
        """Scores for `genomes` in order; each distinct one is computed once, in parallel."""
        todo: list[tuple] = []
        for g in genomes:
            k = self._key(g)
            if k not in self._cache and k not in todo:
                todo.append(k)
        if todo:
            assert self._runner is not None, "_evaluate outside run()"
            params = [self._params(list(k)) for k in todo]
            seeds = [job_seed(self.seed, *k) for k in todo]      # each trial its own seed
            results: list[Any] = [None] * len(todo)
            for r in self._runner.map(params, seeds):            # as they finish, on any worker
                results[r.index] = r.value
                self._where[todo[r.index]] = r.node
                self._tick()
            self._cache.update(zip(todo, results, strict=True))
        return [self._cache[self._key(g)] for g in genomes]

    def _tick(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _save(self, state: dict[str, Any]) -> None:
        if self.checkpoint is None:
            return
        state = {**state, "fingerprint": self.fingerprint(), "cache": self._cache, "where": self._where}
        atomic_write_bytes(self.checkpoint, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def _load(self) -> dict[str, Any] | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        try:
            state = pickle.loads(self.checkpoint.read_bytes())
        except Exception as exc:
            raise ConfigError(f"checkpoint {self.checkpoint} is unreadable ({type(exc).__name__}: {exc}); "
                              "delete it (or pass --fresh) to start over") from exc
        if state.get("fingerprint") != self.fingerprint():
            raise ConfigError(f"checkpoint {self.checkpoint} belongs to a different search (space, method, seed or "
                              "sizes changed); delete it (or pass --fresh) to start over")
        self._cache = state["cache"]
        self._where = dict(state.get("where", {}))
        return state

    # -- the run -------------------------------------------------------------------------------
    def run(self, *, stop_after: int | None = None) -> OptimizationResult:
        """Search; resume from the checkpoint when there is one. `stop_after`: return after that
        many generations / batches in total (the checkpoint holds the rest of the way)."""
        from tqdm import tqdm

        state = self._load()
        total = self.planned_evaluations()
        self._bar = tqdm(total=total, desc=f"optimise ({self.method})", unit="eval", disable=not self.progress,
                         initial=min(len(self._cache), total))
        runner = self.backend if self.backend is not None else LocalBackend(self.jobs)
        try:
            runner.open(_Scored(self.objective))
            self._runner = runner
            if self.method == "ga":
                return self._run_ga(state, stop_after)
            return self._run_list(state, stop_after)
        finally:
            self._runner = None
            runner.done()
            if self.backend is None:
                runner.close()
            self._bar.close()
            self._bar = None

    def planned_evaluations(self) -> int:
        """Upper bound on objective calls (repeats are served from the cache)."""
        if self.method == "grid":
            return math.prod(len(p.grid()) for p in self.space)
        if self.method == "random":
            return self.samples
        return self.population + self.generations * (self.population - self.elite)

    def _candidates(self) -> list[list[Any]]:
        if self.method == "grid":
            return [list(c) for c in itertools.product(*(p.grid() for p in self.space))]
        rng = random.Random(self.seed)
        return [[p.sample(rng) for p in self.space] for _ in range(self.samples)]

    def _run_list(self, state: dict[str, Any] | None, stop_after: int | None) -> OptimizationResult:
        cands = self._candidates()
        done = state["done"] if state else 0
        batches = state["batches"] if state else 0
        while done < len(cands):
            if stop_after is not None and batches >= stop_after:
                return self._result(cands[:done], 0, completed=False)
            chunk = cands[done:done + self.batch]
            self._evaluate(chunk)
            done += len(chunk)
            batches += 1
            self._save({"method": self.method, "done": done, "batches": batches})
        return self._result(cands, 0, completed=True)

    def _result(self, genomes: Iterable[list[Any]], generations: int, *, completed: bool,
                history: list[dict[str, float]] | None = None) -> OptimizationResult:
        seen: dict[tuple, Trial] = {}
        for g in genomes:
            k = self._key(g)
            if k in self._cache and k not in seen:
                score, info = self._cache[k]
                seen[k] = Trial(self._params(g), score, info, self._where.get(k, ""))
        # ties keep the order of first appearance: deterministic whatever the worker count
        trials = sorted(seen.values(), key=lambda t: -t.score)
        return OptimizationResult(self.method, tuple(trials), len(self._cache), generations, completed,
                                  tuple(history or ()))

    # -- the genetic algorithm (DEAP) --------------------------------------------------------------
    def _toolbox(self) -> Any:
        from deap import base, creator, tools

        if not hasattr(creator, "OptFitness"):
            creator.create("OptFitness", base.Fitness, weights=(1.0,))
        if not hasattr(creator, "OptIndividual"):
            creator.create("OptIndividual", list, fitness=creator.OptFitness)
        tb = base.Toolbox()
        tb.register("select", tools.selTournament, tournsize=self.tournament)
        tb.register("mate", tools.cxUniform, indpb=0.5)
        tb.register("mutate", self._mutate)
        tb.register("map", self._map)
        tb.register("individual", lambda genes: creator.OptIndividual(genes))
        return tb

    def _map(self, _fn: Any, genomes: Iterable[list[Any]]) -> list[tuple[float, dict[str, Any]]]:
        # DEAP's map hook: distinct genomes go to the worker pool, in order
        return self._evaluate([list(g) for g in genomes])

    def _mutate(self, ind: list[Any]) -> tuple[list[Any]]:
        # each gene mutates with probability 1/len (at least one always does), using DEAP's RNG
        # stream (the global `random`, saved in every checkpoint)
        n = len(ind)
        forced = random.randrange(n)
        for i, p in enumerate(self.space):
            if i == forced or random.random() < 1.0 / n:
                ind[i] = p.mutate(ind[i], random)  # type: ignore[arg-type]
        return (ind,)

    def _run_ga(self, state: dict[str, Any] | None, stop_after: int | None) -> OptimizationResult:
        from deap import tools

        tb = self._toolbox()
        if state is None:
            random.seed(self.seed)
            pop = [tb.individual([p.sample(random) for p in self.space]) for _ in range(self.population)]  # type: ignore[arg-type]
            gen, history = 0, []
            self._assign(pop, tb.map(None, pop))
            history.append(self._stats(0, pop))
            self._save({"method": "ga", "gen": 0, "pop": [list(i) for i in pop], "rng": random.getstate(),
                        "history": history})
        else:
            random.setstate(state["rng"])
            gen, history = state["gen"], list(state["history"])
            pop = [tb.individual(list(g)) for g in state["pop"]]
            self._assign(pop, tb.map(None, pop))   # all cached: no objective calls
        everything = [list(i) for i in pop]
        while gen < self.generations:
            if stop_after is not None and gen >= stop_after:
                return self._result(self._all_cached(), gen, completed=False, history=history)
            elite = tools.selBest(pop, self.elite) if self.elite else []
            offspring = [tb.individual(list(i)) for i in tb.select(pop, len(pop) - len(elite))]
            for a, b in zip(offspring[::2], offspring[1::2], strict=False):
                if random.random() < self.cx_prob:
                    tb.mate(a, b)
            for ind in offspring:
                if random.random() < self.mut_prob:
                    tb.mutate(ind)
                ind[:] = [p.repair(v) for p, v in zip(self.space, ind, strict=False)]
            self._assign(offspring, tb.map(None, offspring))
            pop = [tb.individual(list(i)) for i in elite] + offspring
            self._assign(pop, tb.map(None, pop))
            gen += 1
            everything += [list(i) for i in offspring]
            history.append(self._stats(gen, pop))
            self._save({"method": "ga", "gen": gen, "pop": [list(i) for i in pop], "rng": random.getstate(),
                        "history": history})
        return self._result(self._all_cached(), gen, completed=True, history=history)

    def _all_cached(self) -> list[list[Any]]:
        return [list(k) for k in self._cache]

    @staticmethod
    def _assign(pop: list[Any], results: list[tuple[float, dict[str, Any]]]) -> None:
        for ind, (score, _info) in zip(pop, results, strict=False):
            ind.fitness.values = (score if math.isfinite(score) else -1e9,)

    @staticmethod
    def _stats(gen: int, pop: list[Any]) -> dict[str, float]:
        fits = [i.fitness.values[0] for i in pop]
        ok = [f for f in fits if f > -1e9]
        return {"gen": gen, "best": max(fits), "mean": sum(ok) / len(ok) if ok else float("nan")}
