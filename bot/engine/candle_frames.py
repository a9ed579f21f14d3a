"""The strategy context's candles (and indicators), built only when a strategy reads them.

`StrategyContext.candles` is `{interval: frame}`. Building the frame of a pair's last 2,000
candles costs ~0.1 ms (pandas), once per pair per candle: at 50 pairs that is 5 ms of every
batch. `CandleFrames` is that dict with the frame made on first use; a strategy that can work
on the arrays themselves (the DQN agent's feature stream) reads `tail(interval)` instead and
the frame is never built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

__all__ = ["CandleFrames", "LazyDict"]


class LazyDict(dict[str, Any]):
    """A dict whose items `build()` makes on first use (any read), then a plain dict. Made once
    per candle of every pair: slots, and no call to dict's own (empty) `__init__`, make it a
    third of what it cost."""

    __slots__ = ("_build",)

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:   # (dict.__new__ made it empty)
        self._build: Callable[[], Any] | None = build

    def _fill(self) -> None:
        if self._build is not None:
            build, self._build = self._build, None
            super().update(build())

    def __getitem__(self, key: str) -> Any:
        self._fill()
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __eq__(self, other: object) -> bool:
        self._fill()
        return super().__eq__(other)

    __hash__ = None

    def keys(self) -> dict_keys[str, Any]:
        self._fill()
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        self._fill()
        return super().values()

    def items(self) -> dict_items[str, Any]:
        self._fill()
        return super().items()

    def __repr__(self) -> str:
        self._fill()
        return super().__repr__()


class CandleFrames(LazyDict):
    """`{interval: frame}` whose one frame is built by `build()` on first use; `tail(interval)`
    gives its (open times, values) arrays (values in CANDLE_COLUMNS order) without building it:
    the last `n` rows of `arrays`, cut on first use too (a strategy that reads neither costs no
    slice; `n` None: all of them)."""

    __slots__ = ("_interval", "_source", "_n", "_arrays")

    def __init__(self, interval: str, build: Callable[[], pd.DataFrame],
                 arrays: tuple[np.ndarray, np.ndarray], n: int | None = None) -> None:
        # (LazyDict's init, written out: `_build` here makes the one frame, `_fill` files it)
        self._build = build
        self._interval = interval
        self._source: tuple[np.ndarray, np.ndarray] | None = arrays
        self._n = n
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def _fill(self) -> None:
        if self._build is not None:
            build, self._build = self._build, None
            dict.__setitem__(self, self._interval, build())

    def tail(self, interval: str) -> tuple[np.ndarray, np.ndarray] | None:
        if interval != self._interval:
            return None
        if self._arrays is None:
            (t, v), n = self._source, self._n   # type: ignore[misc]
            self._arrays = (t, v) if n is None else (t[-n:], v[-n:])
            self._source = None
        return self._arrays

    def __contains__(self, key: object) -> bool:
        return key == self._interval if self._build is not None else super().__contains__(key)

    def __len__(self) -> int:
        return 1 if self._build is not None else super().__len__()

    def __repr__(self) -> str:
        arrays = self.tail(self._interval)
        return f"CandleFrames({self._interval!r}, {len(arrays[0]) if arrays is not None else 0} candles)"
