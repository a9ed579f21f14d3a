"""What the research protocol found: per data set, each variant's spread over seeds next to the
baselines on the same test windows, the choice of the default made on validation spans only,
and the JSON + PNG of it all.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.atomic import atomic_write_png, atomic_write_text
from bot.research.walk_forward import Curve, _chain, _finite, _iso, summarize

__all__ = ["ResearchReport", "aggregate", "choose_default", "METRICS", "record_of", "from_json", "BASELINES",
           "servable_candidates", "merge_records"]

# one curve each, no seeds: buy-and-hold, the SMA cross, the analyst, the proposals its trade filter sees
BASELINES = ("buy_and_hold", "sma_cross", "analyst", "analyst_proposals")

# (key, label, worst is the lowest?)
METRICS = (("return_pct", "return %", True), ("sharpe", "Sharpe", True), ("max_drawdown_pct", "max DD %", False),
           ("trades", "trades", False), ("deflated_sharpe", "DSR", True))


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": len(rows)}
    for key, _, low_is_worst in METRICS:
        x = np.array([float(r[key]) for r in rows])
        out[key] = {"mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)) if len(x) > 1 else 0.0,
                    "worst": float(np.min(x) if low_is_worst else np.max(x))}
    out["seeds_profitable"] = int(sum(float(r["return_pct"]) > 0 for r in rows))
    return out


def aggregate(curves: dict[str, dict[int, dict[str, list[Curve]]]], *, interval: str, balance: float,
              n_trials: int) -> dict[str, dict[str, Any]]:
    """curves[strategy][seed]["val" | "test"] = per-fold curves -> per strategy: rows per seed
    (test and validation, folds glued) and the test stats over seeds."""
    out: dict[str, dict[str, Any]] = {}
    for name, by_seed in curves.items():
        trials = n_trials if len(by_seed) > 1 or name not in BASELINES else 1
        rows = {span: {seed: summarize(_chain(c[span]), interval=interval, balance=balance, n_trials=trials)
                       for seed, c in by_seed.items()} for span in ("test", "val")}
        out[name] = {"test": _stats(list(rows["test"].values())), "val": _stats(list(rows["val"].values())),
                     "per_seed": rows}
    return out


def servable_candidates(names: list[str]) -> list[str]:
    """The designs the live strategy can run, and their seed ensembles (one checkpoint, `EnsembleQ`)."""
    from bot.agent.variants import ENSEMBLE_SUFFIX, VARIANTS
    out = []
    for name in names:
        base = name[: -len(ENSEMBLE_SUFFIX)] if name.endswith(ENSEMBLE_SUFFIX) else name
        if base in VARIANTS and VARIANTS[base].servable:
            out.append(name)
    return out


def merge_records(old: dict[str, Any], new: dict[str, Any], command: str) -> dict[str, Any]:
    """A research record with a later run's designs added (or replaced: a design in both is taken
    from the new run). Both runs must share seeds, folds and, per common data set, the splits;
    the baselines must agree (they are the same windows), else ValueError. Each row keeps the
    deflated Sharpe of its own run (its trial count); the default is chosen again on the merged
    validation spans among the servable designs and their ensembles."""
    for key in ("seed_list", "folds", "fee_rate", "slippage_bps", "sma", "n_envs", "evals_per_fold"):
        if old["settings"].get(key) != new["settings"].get(key):
            raise ValueError(f"the runs differ in {key}: {old['settings'].get(key)} vs {new['settings'].get(key)}")
    merged = json.loads(json.dumps(old))
    for name, ds in new["datasets"].items():
        if name not in merged["datasets"]:
            merged["datasets"][name] = ds
            continue
        mine = merged["datasets"][name]
        if [s["test_start"] for s in mine["splits"]] != [s["test_start"] for s in ds["splits"]] or \
                mine["steps"] != ds["steps"]:
            raise ValueError(f"{name}: the runs' splits or training steps differ")
        for base in ("buy_and_hold", "sma_cross"):
            if mine["results"][base]["test"] != ds["results"][base]["test"]:
                raise ValueError(f"{name}: {base} differs between the runs: not the same candles")
        for strat, agg in ds["results"].items():
            if strat not in ("buy_and_hold", "sma_cross", "analyst"):
                mine["results"][strat] = agg
        if "default_records" in mine:
            mine.setdefault("candidate_records", {}).setdefault(old["default"], mine["default_records"])
        if "default_records" in ds:
            mine.setdefault("candidate_records", {})[new["default"]] = ds["default_records"]
        for strat, rec in ds.get("candidate_records", {}).items():
            mine.setdefault("candidate_records", {})[strat] = rec
        for strat, rec in ds.get("baseline_records", {}).items():
            mine.setdefault("baseline_records", {}).setdefault(strat, rec)
    st = merged["settings"]
    for key in ("variants", "ensembles"):
        st[key] = list(dict.fromkeys(st.get(key, []) + new["settings"].get(key, [])))
    st["variant_descriptions"] = {**st.get("variant_descriptions", {}), **new["settings"].get("variant_descriptions", {})}
    st["n_trials"] = len(st["variants"]) + len(st["ensembles"])
    st.setdefault("runs", [{"command": old.get("command", ""), "n_trials": old["settings"].get("n_trials")}])
    st["runs"].append({"command": command, "n_trials": new["settings"].get("n_trials"),
                       "variants": new["settings"].get("variants"), "ensembles": new["settings"].get("ensembles")})
    hourly = [n for n, d in merged["datasets"].items() if d["interval"] == "60"]
    scored = {n: d["results"] for n, d in merged["datasets"].items()}
    names = st["variants"] + st["ensembles"]
    cands = servable_candidates(names)
    st["servable_default_candidates"] = cands
    merged["default"], _ = choose_default(scored, cands, hourly)
    _, merged["selection"] = choose_default(scored, names, hourly)
    for d in merged["datasets"].values():
        recs = d.get("candidate_records", {})
        if merged["default"] in recs:
            d["default_records"] = recs[merged["default"]]
        else:
            d.pop("default_records", None)   # another design's curves: not the chosen one's
    merged["command"] = old.get("command", "")
    return merged


def choose_default(per_set: dict[str, dict[str, dict[str, Any]]], candidates: list[str],
                   hourly: list[str] | None = None) -> tuple[str, dict[str, float]]:
    """The variant with the best mean validation Sharpe (test spans are not looked at), averaged
    over the `hourly` sets when there are any (the bot trades hourly candles), else over all sets."""
    score: dict[str, float] = {}
    judged = {k: v for k, v in per_set.items() if k in hourly} if hourly else per_set
    for v in candidates:
        vals = [agg[v]["val"]["sharpe"]["mean"] for agg in judged.values() if v in agg]
        if vals:
            score[v] = float(np.mean(vals))
    if not score:
        raise ValueError("no variant to choose from")
    return max(score, key=lambda k: score[k]), score


@dataclass
class ResearchReport:
    """Everything one `python -m bot research` run measured."""

    datasets: dict[str, dict[str, Any]]          # name -> {symbol, interval, splits, results, ...}
    settings: dict[str, Any]
    default: str
    selection: dict[str, float]
    curves: dict[str, dict[str, dict[int, Curve]]] = field(default_factory=dict)   # set -> strategy -> seed -> test curve
    training: list[dict[str, Any]] = field(default_factory=list)

    def table(self, name: str) -> str:
        ds = self.datasets[name]
        res = ds["results"]
        lines = [f"### {name}: out of sample {ds['test_span']}, {len(ds['splits'])} folds, "
                 f"{self.settings['seeds']} seeds, after fees and slippage",
                 "",
                 "| strategy | return % mean ± sd (worst) | Sharpe mean ± sd (worst) | max DD % mean (worst) "
                 "| trades mean | DSR mean (worst) | seeds > 0 | val Sharpe |",
                 "|---|---|---|---|---|---|---|---|"]
        for strat, agg in res.items():
            t = agg["test"]
            mark = " (default)" if strat == self.default else ""
            one = t["seeds"] == 1
            cell = lambda k, f, t=t, one=one: (f.format(t[k]["mean"]) if one else  # noqa: E731
                                               f"{f.format(t[k]['mean'])} ± {t[k]['sd']:.2f} ({f.format(t[k]['worst'])})")
            lines.append(f"| {strat}{mark} | {cell('return_pct', '{:+.1f}')} | {cell('sharpe', '{:.2f}')} | "
                         f"{t['max_drawdown_pct']['mean']:.1f}"
                         + ("" if one else f" ({t['max_drawdown_pct']['worst']:.1f})")
                         + f" | {t['trades']['mean']:.0f} | {t['deflated_sharpe']['mean']:.2f}"
                         + ("" if one else f" ({t['deflated_sharpe']['worst']:.2f})")
                         + f" | {'-' if one else str(t['seeds_profitable']) + '/' + str(t['seeds'])}"
                         + f" | {agg['val']['sharpe']['mean']:.2f} |")
        if "analyst" not in res:
            why = "not run (--no-analyst)" if ds["interval"] == "60" else "n/a: the analyst refuses daily candles"
            lines.append(f"| analyst | {why} | | | | | | |")
        return "\n".join(lines)

    def tables(self) -> str:
        sel = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.selection.items(), key=lambda kv: -kv[1]))
        return "\n\n".join([self.table(n) for n in self.datasets]
                           + [f"Default chosen on validation spans only: **{self.default}** "
                              f"(mean validation Sharpe over seeds on {self.settings.get('judged_on', 'all sets')}: "
                              f"{sel}; only designs the live strategy runs, or their seed ensembles, can be the default)"])

    def goal_check(self) -> str:
        """Issue 14's goal for the default, set by set: mean Sharpe above buy-and-hold's and the
        SMA's, at least 7 of 8 seeds (7/8 of them) in profit, mean max drawdown below holding's."""
        lines = []
        for name, ds in self.datasets.items():
            res = ds["results"]
            d = res.get(self.default)
            if d is None:
                continue
            t, bh, sma = d["test"], res["buy_and_hold"]["test"], res["sma_cross"]["test"]
            checks = {
                f"mean Sharpe {t['sharpe']['mean']:.2f} > buy-and-hold {bh['sharpe']['mean']:.2f}":
                    t["sharpe"]["mean"] > bh["sharpe"]["mean"],
                f"> SMA {sma['sharpe']['mean']:.2f}": t["sharpe"]["mean"] > sma["sharpe"]["mean"],
                f"{t['seeds_profitable']}/{t['seeds']} seeds in profit (need {math.ceil(7 * t['seeds'] / 8)})":
                    t["seeds_profitable"] >= math.ceil(7 * t["seeds"] / 8),
                f"mean max DD {t['max_drawdown_pct']['mean']:.1f} % < buy-and-hold {bh['max_drawdown_pct']['mean']:.1f} %":
                    t["max_drawdown_pct"]["mean"] < bh["max_drawdown_pct"]["mean"],
            }
            verdict = "**yes**" if all(checks.values()) else "**not yet**"
            lines.append(f"- {name}: {verdict}: " + "; ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in checks.items()))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"default": self.default, "selection": self.selection, "settings": self.settings,
                "datasets": self.datasets, "training": self.training}

    def write(self, out_dir: Path, *, plot: bool = True) -> dict[str, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"json": out_dir / "research.json", "tables": out_dir / "research.md"}
        atomic_write_text(paths["json"], json.dumps(_finite(self.to_json()), indent=1, default=_plain))
        atomic_write_text(paths["tables"], self.tables() + "\n")
        if plot:
            paths["png"] = out_dir / "research.png"
            self._plot(paths["png"])
        return paths

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(self.curves)
        fig, axes = plt.subplots(n, 1, figsize=(11, 3.6 * n), squeeze=False)
        for ax, (name, by_strat) in zip(axes[:, 0], self.curves.items(), strict=True):
            for strat, by_seed in by_strat.items():
                cs = list(by_seed.values())
                t = pd.to_datetime(cs[0].time_ms, unit="ms")
                if len(cs) == 1:
                    ax.plot(t, (cs[0].equity - 1) * 100, lw=1.4, ls="--", label=strat)
                    continue
                m = min(len(c.equity) for c in cs)
                eq = np.stack([c.equity[:m] for c in cs])
                line, = ax.plot(t[:m], (np.median(eq, axis=0) - 1) * 100, lw=1.4 if strat == self.default else 1.0,
                                label=f"{strat} (median of {len(cs)} seeds, band min-max)")
                ax.fill_between(t[:m], (eq.min(axis=0) - 1) * 100, (eq.max(axis=0) - 1) * 100,
                                color=line.get_color(), alpha=0.12)
            ax.set_title(f"{name}: test folds glued, net of fees")
            ax.set_ylabel("net return %")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        atomic_write_png(fig, path, dpi=90)


def from_json(record: dict[str, Any]) -> ResearchReport:
    """The report (tables, goal check) back from its research.json."""
    return ResearchReport(record["datasets"], record["settings"], record["default"], record["selection"],
                          training=record.get("training", []))


def record_of(curve: Curve, points: int = 400) -> dict[str, Any]:
    """A test equity curve thinned to about `points` points, for a checkpoint's record."""
    step = max(len(curve.equity) // points, 1)
    idx = np.r_[np.arange(0, len(curve.equity), step), len(curve.equity) - 1]
    idx = np.unique(idx)
    return {"time_ms": [int(x) for x in curve.time_ms[idx]], "equity": [round(float(x), 6) for x in curve.equity[idx]],
            "start": _iso(int(curve.time_ms[0])), "end": _iso(int(curve.time_ms[-1]))}


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return str(x)
