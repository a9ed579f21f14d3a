"""What the optimiser searches and what it leaves behind: parameter ranges (`Param`), search-space
files (YAML, `load_space`) and the best-parameters file the bot loads (`save_best_params`,
`load_best_params`). Every file error names the file and the key that is wrong.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.atomic import atomic_write_bytes
from bot.errors import ConfigError

__all__ = ["Param", "SpaceFile", "load_space", "save_best_params", "load_best_params", "atomic_write_bytes",
           "finite_only"]

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
    body = finite_only({"strategy": strategy, "params": params, **extra})
    atomic_write_bytes(path, json.dumps(body, indent=2, default=_json_safe).encode())
    return path


def finite_only(o: Any) -> Any:
    """JSON has no infinity or NaN: they become null (e.g. a profit factor without losses)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite_only(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite_only(v) for v in o]
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
