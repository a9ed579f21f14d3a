"""Search strategy parameters: grid, random, or a DEAP genetic algorithm; parallel and resumable.

- **Space**: int / float / choice parameters (`Param`), usually read from a YAML file
  (`load_space`, see examples/space_sma.yaml).
- **Objective**: any picklable callable `params -> score` or `params -> (score, info)`; higher is
  better. The default, `FoldObjective` (bot/optimization_objective.py), backtests the strategy
  on several consecutive folds of the search span and scores the mean of their Sharpe ratios, so
  a setting that shines in one stretch of history and fails in the others does not win. The last
  part of the data (the holdout) is never shown to the search; the winner is judged there.
- **Parallel**: evaluations run on a multiprocessing pool of `jobs` workers (OPTIMIZER_JOBS /
  --jobs); the GA uses it as DEAP's `toolbox.map`. Results come back in order, so the search is
  the same whatever the number of workers.
- **Resumable**: after every generation (GA) or batch (grid / random) the whole search state,
  RNG included, is written atomically to the checkpoint file. A killed run started again with the
  same settings continues where it stopped and ends with the same result as an unbroken run.
- **Selection bias**: with many trials the best score is partly luck; `OptimizationResult`
  carries the number of trials and the spread of their Sharpe ratios for the deflated Sharpe
  ratio of the winner (`bot.metrics.deflated_sharpe`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import pickle
import random
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

__all__ = ["Param", "Trial", "OptimizationResult", "ParameterOptimizer", "load_space", "SpaceFile",
           "save_best_params", "load_best_params", "METHODS"]

METHODS = ("grid", "random", "ga")
_KINDS = ("int", "float", "choice")


@dataclass(frozen=True)
class Param:
    """One searched parameter. int/float: [low, high] (int: multiples of `step` from low);
    choice: one of `values`. `grid_points`: how many values a float gets in a grid search."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float = 1.0
    values: tuple[Any, ...] = ()
    grid_points: int = 5
    decimals: int = 3

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"parameter {self.name!r}: type {self.kind!r} is not known; allowed: {', '.join(_KINDS)}")
        if self.kind == "choice":
            if not self.values:
                raise ConfigError(f"parameter {self.name!r}: a choice needs a non-empty list of values")
        elif not self.low < self.high:
            raise ConfigError(f"parameter {self.name!r}: low ({self.low}) must be below high ({self.high})")
        if self.kind == "int" and (self.step < 1 or int(self.step) != self.step):
            raise ConfigError(f"parameter {self.name!r}: an int step must be a whole number >= 1, got {self.step}")

    # values -----------------------------------------------------------------------------------
    def grid(self) -> list[Any]:
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step)))
        n = max(2, self.grid_points)
        return [round(self.low + (self.high - self.low) * k / (n - 1), self.decimals) for k in range(n)]

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return self.values[rng.randrange(len(self.values))]
        if self.kind == "int":
            return int(self.low) + int(self.step) * rng.randint(0, int((self.high - self.low) // self.step))
        return round(rng.uniform(self.low, self.high), self.decimals)

    def repair(self, v: Any) -> Any:
        """The nearest allowed value (after crossover / mutation)."""
        if self.kind == "choice":
            return v if v in self.values else self.values[0]
        v = min(max(v, self.low), self.high)
        if self.kind == "int":
            k = round((v - self.low) / self.step)
            return int(min(int(self.low) + int(self.step) * k, int(self.high)))
        return round(float(v), self.decimals)

    def mutate(self, v: Any, rng: random.Random) -> Any:
        """A nearby value: Gaussian step of a tenth of the range for numbers, a new pick for choices."""
        if self.kind == "choice":
            return self.values[rng.randrange(len(self.values))]
        sigma = (self.high - self.low) * 0.1
        step = rng.gauss(0.0, sigma)
        if self.kind == "int" and abs(step) < self.step:
            step = self.step if step >= 0 else -self.step  # an int mutation always moves
        return self.repair(v + step)

    @classmethod
    def from_spec(cls, name: str, spec: dict[str, Any]) -> "Param":
        if not isinstance(spec, dict):
            raise ConfigError(f"parameter {name!r}: expected a mapping like {{type: int, low: 5, high: 50}}")
        kind = str(spec.get("type", "choice" if "values" in spec else "float")).lower()
        known = {"type", "low", "high", "step", "values", "grid_points", "decimals"}
        unknown = set(spec) - known
        if unknown:
            raise ConfigError(f"parameter {name!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(sorted(known))}")
        try:
            return cls(name=name, kind=kind, low=float(spec.get("low", 0.0)), high=float(spec.get("high", 0.0)),
                       step=float(spec.get("step", 1)), values=tuple(spec.get("values", ()) or ()),
                       grid_points=int(spec.get("grid_points", 5)), decimals=int(spec.get("decimals", 3)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"parameter {name!r}: {exc}") from exc


@dataclass(frozen=True)
class Trial:
    """One evaluated parameter set."""

    params: dict[str, Any]
    score: float
    info: dict[str, Any] = field(default_factory=dict)


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
        _atomic_bytes(Path(path), pd.DataFrame(rows).to_csv(index=False).encode())


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


# ------------------------------------------------------------------------------------------------
# worker side: the objective lives in each worker process, set once by the pool initializer
_WORKER_OBJECTIVE: Callable[[dict[str, Any]], Any] | None = None


def _init_worker(objective: Callable[[dict[str, Any]], Any]) -> None:
    global _WORKER_OBJECTIVE
    _WORKER_OBJECTIVE = objective


def _call(objective: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    try:
        out = objective(params)
    except (ValueError, ConfigError) as exc:  # a combination the strategy refuses (e.g. fast >= slow)
        return float("-inf"), {"error": str(exc)}
    score, info = (out if isinstance(out, tuple) else (out, {}))
    score = float(score)
    return (score if math.isfinite(score) else float("-inf")), dict(info)


def _evaluate_in_worker(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    assert _WORKER_OBJECTIVE is not None, "worker started without an objective"
    return _call(_WORKER_OBJECTIVE, params)


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ParameterOptimizer:
    """Grid, random or genetic search of `space` for the highest `objective` score.

    Keyword options: `method` (grid / random / ga), `jobs` (worker processes; 1 = in process),
    `seed`, `checkpoint` (file; resumed when it exists and belongs to the same search),
    `progress` (tqdm bar), `samples` (random search size), `population`, `generations`,
    `cx_prob`, `mut_prob`, `tournament`, `elite` (GA), `batch` (evaluations between
    checkpoints in grid / random search).
    """

    def __init__(self, space: Iterable[Param], objective: Callable[[dict[str, Any]], Any], *,
                 method: str = "ga", jobs: int = 1, seed: int = 7, checkpoint: str | Path | None = None,
                 progress: bool = True, samples: int = 100, population: int = 50, generations: int = 20,
                 cx_prob: float = 0.6, mut_prob: float = 0.3, tournament: int = 3, elite: int = 2,
                 batch: int | None = None) -> None:
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
        self._pool: Any = None
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
            params = [self._params(list(k)) for k in todo]
            if self._pool is not None:
                results = []
                for r in self._pool.imap(_evaluate_in_worker, params, chunksize=max(1, len(params) // (4 * self.jobs))):
                    results.append(r)
                    self._tick()
            else:
                results = []
                for p in params:
                    results.append(_call(self.objective, p))
                    self._tick()
            self._cache.update(zip(todo, results, strict=False))
        return [self._cache[self._key(g)] for g in genomes]

    def _tick(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _save(self, state: dict[str, Any]) -> None:
        if self.checkpoint is None:
            return
        state = {**state, "fingerprint": self.fingerprint(), "cache": self._cache}
        _atomic_bytes(self.checkpoint, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

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
        return state

    # -- the run -------------------------------------------------------------------------------
    def run(self, *, stop_after: int | None = None) -> OptimizationResult:
        """Search; resume from the checkpoint when there is one. `stop_after`: return after that
        many generations / batches in total (the checkpoint holds the rest of the way)."""
        from tqdm import tqdm

        state = self._load()
        total = self._planned_evaluations()
        self._bar = tqdm(total=total, desc=f"optimise ({self.method})", unit="eval", disable=not self.progress,
                         initial=min(len(self._cache), total))
        try:
            if self.jobs > 1:
                self._pool = multiprocessing.get_context().Pool(self.jobs, initializer=_init_worker,
                                                                initargs=(self.objective,))
            if self.method == "ga":
                return self._run_ga(state, stop_after)
            return self._run_list(state, stop_after)
        finally:
            if self._pool is not None:
                self._pool.terminate()
                self._pool.join()
                self._pool = None
            self._bar.close()
            self._bar = None

    def _planned_evaluations(self) -> int:
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
                seen[k] = Trial(self._params(g), score, info)
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


# ------------------------------------------------------------------------------------------------
# space files and best-parameter files

@dataclass(frozen=True)
class SpaceFile:
    """A search-space file: which strategy on which data, and the parameters to search."""

    strategy: str
    params: tuple[Param, ...]
    fixed: dict[str, Any]
    symbol: str = "BTCUSDT"
    interval: str = "60"
    start: str | None = None
    end: str | None = None
    data: str | None = None
    folds: int = 4
    holdout: float = 0.25
    min_trades: int = 30


def load_space(path: str | Path) -> SpaceFile:
    """Read a YAML search space; errors name the file and the bad key."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"search space file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"search space file {path} is not valid YAML: {exc}") from exc
    known = {"strategy", "params", "fixed", "symbol", "interval", "start", "end", "data", "folds", "holdout",
             "min_trades"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"search space file {path}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(known))}")
    specs = raw.get("params") or {}
    if not isinstance(specs, dict) or not specs:
        raise ConfigError(f"search space file {path}: `params` must map parameter names to their ranges")
    folds, holdout = int(raw.get("folds", 4)), float(raw.get("holdout", 0.25))
    if folds < 1 or not 0.0 <= holdout < 0.9:
        raise ConfigError(f"search space file {path}: folds ({folds}) must be >= 1 and holdout ({holdout}) in [0, 0.9)")
    return SpaceFile(strategy=str(raw.get("strategy", "sma")),
                     params=tuple(Param.from_spec(str(k), v) for k, v in specs.items()),
                     fixed=dict(raw.get("fixed") or {}), symbol=str(raw.get("symbol", "BTCUSDT")).upper(),
                     interval=str(raw.get("interval", "60")),
                     start=None if raw.get("start") is None else str(raw["start"]),
                     end=None if raw.get("end") is None else str(raw["end"]),
                     data=raw.get("data"), folds=folds, holdout=holdout,
                     min_trades=int(raw.get("min_trades", 30)))


def save_best_params(path: str | Path, *, strategy: str, params: dict[str, Any], **extra: Any) -> Path:
    """The winner as JSON the bot loads with `load_best_params` (strategy name + options)."""
    path = Path(path)
    body = _finite_only({"strategy": strategy, "params": params, **extra})
    _atomic_bytes(path, json.dumps(body, indent=2, default=_json_safe).encode())
    return path


def _finite_only(o: Any) -> Any:
    """JSON has no infinity or NaN: they become null (e.g. a profit factor without losses)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite_only(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite_only(v) for v in o]
    return o


def _json_safe(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def load_best_params(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(strategy name, options) from a best-parameters file, ready for `get_strategy(name, settings, **options)`."""
    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"parameters file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"parameters file {path} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or "strategy" not in body or not isinstance(body.get("params"), dict):
        raise ConfigError(f"parameters file {path} needs {{\"strategy\": name, \"params\": {{...}}}}")
    return str(body["strategy"]), dict(body["params"])
