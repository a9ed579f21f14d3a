"""The fast path's round trips as the loop left them: arrays, made into `ClosedTrade`s when read.

A fast backtest of 300,000 candles makes ~12,000 round trips; building their objects took
longer than the loop that found them, and the optimiser's folds only count them. `TradeRecords`
holds the arrays (`fast_kernel.run_kernel`'s layout) and builds the tuple of `ClosedTrade`s
(bot.exchange.ledger.round_trip, the one rule for them) the first time anything but its length
is asked for. It is a read-only sequence equal to the tuple it stands for.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from bot.exchange.ledger import round_trip
from bot.research.fast_kernel import REASONS
from bot.types import ClosedTrade

__all__ = ["TradeRecords"]


class TradeRecords(Sequence[ClosedTrade]):
    """Round trips of one symbol: `ints` rows (direction, entry ms, exit ms, reason code) and
    `floats` rows (qty, entry, exit, realised before fees, fees), one row per trade."""

    __slots__ = ("symbol", "ints", "floats", "_built")

    def __init__(self, symbol: str, ints: np.ndarray, floats: np.ndarray) -> None:
        self.symbol = symbol
        self.ints = ints
        self.floats = floats
        self._built: tuple[ClosedTrade, ...] | None = None

    def as_tuple(self) -> tuple[ClosedTrade, ...]:
        """The `ClosedTrade`s, built once. The garbage collector waits meanwhile: thousands of new
        acyclic objects would each time trigger full collections that walk every object of the
        process, which made the time grow faster than the trades."""
        if self._built is None:
            was_on = gc.isenabled()
            gc.disable()
            try:
                cols = [c.tolist() for c in self.ints.T] + [c.tolist() for c in self.floats.T]
                self._built = tuple(round_trip(self.symbol, d, q, e, x, e_ms, x_ms, g, f, REASONS[r], "BACKTEST")
                                    for d, e_ms, x_ms, r, q, e, x, g, f in zip(*cols, strict=True))
            finally:
                if was_on:
                    gc.enable()
        return self._built

    def __len__(self) -> int:
        return len(self.ints)

    @overload
    def __getitem__(self, k: int) -> ClosedTrade: ...

    @overload
    def __getitem__(self, k: slice) -> tuple[ClosedTrade, ...]: ...

    def __getitem__(self, k: int | slice) -> ClosedTrade | tuple[ClosedTrade, ...]:
        return self.as_tuple()[k]

    def __iter__(self) -> Iterator[ClosedTrade]:
        return iter(self.as_tuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TradeRecords):
            return self.as_tuple() == other.as_tuple()
        if isinstance(other, (tuple, list)):
            return self.as_tuple() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TradeRecords({self.symbol!r}, {len(self)} trades)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TradeRecords, (self.symbol, self.ints, self.floats))
