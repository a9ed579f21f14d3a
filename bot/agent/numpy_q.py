"""The Q-network's forward pass in NumPy for an agent that is not learning, and the guard that
says when its answer may stand in for torch's.

One candle's state through the network costs ~80 us in torch (call overhead per layer) and a
few here. Float32 arithmetic in another order than torch's can move a Q-value in its last bits,
so a decision is taken from these values only when no choice is that close (`sure`); else the
caller asks torch, and every decision stays the one the torch network takes
(bot/strategies/dqn.py `DQNStrategy._q_values`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np

__all__ = ["NumpyQ", "sure", "sure_row", "sure_rows", "f32"]

_VERSION = attrgetter("_version")
_F32 = struct.Struct("f")
_clip: Any = np._core.umath.clip  # type: ignore[attr-defined]  # the ufunc: np.clip's wrapper costs 2x


class NumpyQ:
    """The forward pass of a `QNetwork` (MLP trunk, dueling head, input standardisation) or of
    an `EnsembleQ` of them (the members' mean), with the members stacked so each layer is one
    batched product for all of them. The dueling head and the members' mean are linear in the
    last hidden layer, so they are folded into one matrix (in float64, then float32): the last
    step is one product. The weights are re-read when any tensor changed (torch's in-place
    version counters: a load, a learning step, `fit_normalisation`)."""

    def __init__(self, net: Any) -> None:
        from torch import nn

        self.net = net
        members = list(net.members) if hasattr(net, "members") else [net]
        self.tensors: list[Any] = []
        for m in members:
            trunk = list(m.trunk)
            if [type(x) for x in trunk] != [nn.Linear, nn.ReLU] * (len(trunk) // 2) or not trunk:
                raise TypeError("not the Linear/ReLU trunk this forward pass knows")
            self.tensors += [m.mean, m.std] + [p for x in trunk if isinstance(x, nn.Linear)
                                               for p in (x.weight, x.bias)] + \
                [m.value.weight, m.value.bias, m.advantage.weight, m.advantage.bias]
        self.n_members = len(members)
        self.version: list[int] = []
        self._read()

    def _read(self) -> None:
        n = len(self.tensors) // self.n_members
        per = [[t.detach().cpu().numpy().astype(np.float64) for t in self.tensors[i * n:(i + 1) * n]]
               for i in range(self.n_members)]
        if len({tuple(a.shape for a in arrays) for arrays in per}) != 1:
            raise TypeError("ensemble members of different shapes")

        def stack(i: int) -> np.ndarray:
            return np.stack([arrays[i] for arrays in per]).astype(np.float32)

        self.mean, self.std = stack(0)[:, None, :], stack(1)[:, None, :]      # (M, 1, D)
        self.layers = [(np.ascontiguousarray(stack(i).transpose(0, 2, 1)), stack(i + 1)[:, None, :])
                       for i in range(2, n - 4, 2)]                          # (M, D, H), (M, 1, H)
        # Q_a = mean_m [V_m + A_m,a - mean_b A_m,b], each linear in the member's last hidden h_m:
        # Q = sum_m h_m @ W_m + c, with W_m = (w_v + w_a - mean_b w_a) / M (H, A)
        w_v = np.stack([arrays[n - 4] for arrays in per])       # (M, 1, H)
        b_v = np.stack([arrays[n - 3] for arrays in per])       # (M, 1)
        w_a = np.stack([arrays[n - 2] for arrays in per])       # (M, A, H)
        b_a = np.stack([arrays[n - 1] for arrays in per])       # (M, A)
        w = (w_v + w_a - w_a.mean(axis=1, keepdims=True)) / self.n_members
        self.head = np.ascontiguousarray(w.transpose(0, 2, 1).reshape(-1, w.shape[1])).astype(np.float32)
        self.head_bias = ((b_v + b_a - b_a.mean(axis=1, keepdims=True)).sum(axis=0)
                          / self.n_members).astype(np.float32)
        self.version = list(map(_VERSION, self.tensors))

    def __call__(self, states: np.ndarray) -> np.ndarray:
        """Q-values of a batch of float32 states (N, D) -> (N, A), float32."""
        if list(map(_VERSION, self.tensors)) != self.version:
            self._read()
        z = np.subtract(states, self.mean)           # (M, N, D): every member's own standardisation
        np.divide(z, self.std, out=z)
        _clip(z, -10.0, 10.0, out=z)
        for w, b in self.layers:
            z = np.matmul(z, w)
            np.add(z, b, out=z)
            _clip(z, 0.0, math.inf, out=z)     # ReLU: maximum(z, 0)'s values, at a third of its cost
        m, n, h = z.shape
        q: np.ndarray = np.matmul(z.transpose(1, 0, 2).reshape(n, m * h), self.head)
        np.add(q, self.head_bias, out=q)
        return q


def sure(q: np.ndarray, current: int, margin: float) -> bool:
    """Whether the greedy choice from `q` (masked; `current`: the held position's action or -1)
    is beyond any float32 rounding: the best leads the next by more than a tolerance, and the
    switch-margin test is not within it either."""
    finite = q[np.isfinite(q)]
    if len(finite) < 2:
        return True
    top = np.partition(finite, -2)
    tol = 1e-4 * (1.0 + abs(float(top[-1])))
    if float(top[-1] - top[-2]) <= tol:
        return False
    if margin > 0 and 0 <= current < len(q):
        return abs(float(top[-1] - q[current]) - margin) > tol
    return True


def sure_row(q: Sequence[float], current: int, margin: float) -> bool:
    """`sure` for one row of Q-values as plain floats (float32 values; masked ones -inf): the
    same answer, with float32 rounding where `sure` subtracts in float32 (`f32`)."""
    finite = sorted(x for x in q if -math.inf < x < math.inf)
    if len(finite) < 2:
        return True
    best = finite[-1]
    tol = 1e-4 * (1.0 + abs(best))
    if f32(best - finite[-2]) <= tol:
        return False
    if margin > 0 and 0 <= current < len(q):
        return abs(f32(best - q[current]) - margin) > tol
    return True


def sure_rows(q: np.ndarray, current: np.ndarray, margin: float) -> np.ndarray:
    """`sure_row` for every row of a float32 (N, A) array of Q-values (masked ones -inf; a row
    with a NaN is never sure), `current` each row's held action (-1: none): the same answers, in
    a few array operations (float32 differences, compared in float64, as `sure_row` does)."""
    q = np.asarray(q, dtype=np.float32)
    finite = np.isfinite(q)
    kept = np.where(finite, q, np.float32(-np.inf))
    if q.shape[1] == 2:      # the best and the second of two: no sort (a third of its cost)
        best, second = np.maximum(kept[:, 0], kept[:, 1]), np.minimum(kept[:, 0], kept[:, 1])
        few = ~(finite[:, 0] & finite[:, 1])
    else:
        ranked = np.sort(kept, axis=1)
        best, second = ranked[:, -1], ranked[:, -2]
        few = finite.sum(axis=1) < 2
    tol = 1e-4 * (1.0 + np.abs(best.astype(np.float64)))
    with np.errstate(invalid="ignore"):       # -inf - -inf where fewer than two are finite
        ok = (best - second).astype(np.float64) > tol
        if margin > 0:
            rows = np.arange(len(q))
            has = (current >= 0) & (current < q.shape[1])
            held = q[rows, np.where(has, current, 0)]
            ok &= ~has | (np.abs((best - held).astype(np.float64) - margin) > tol)
    ok |= few
    ok &= ~np.isnan(q).any(axis=1)
    return ok


def f32(x: float) -> float:
    """`x` rounded to float32 (to nearest, ties to even; beyond its range +-inf), as a float.
    The difference, sum, product or quotient of two float32 values computed in float64 and
    rounded so is the float32 operation's result exactly (53 >= 2 * 24 + 2 bits: rounding twice
    is innocuous), which lets one row's arithmetic run on plain floats."""
    try:
        return _F32.unpack(_F32.pack(x))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return math.copysign(math.inf, x)
