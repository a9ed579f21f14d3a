"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Write to a temporary file in the same folder, flush and fsync it, make it readable, then
`os.replace` it over the target (atomic on POSIX and Windows). On any failure the temporary file
is removed and the old file is untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_png"]


@contextmanager
def atomic_file(path: str | os.PathLike, *, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """`with atomic_file(p) as fh: fh.write(...)` replaces `p` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp makes files private; ours are for the user to read
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, default: Callable[[Any], Any] | None = None,
                      indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, default=default, sort_keys=False))


def atomic_write_png(fig: Any, path: str | os.PathLike, *, dpi: int) -> None:
    """Save a matplotlib figure as a PNG atomically, then close it (pyplot keeps every figure it
    made open until it is closed, saved or not)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_file(path) as fh:
            fig.savefig(fh, format="png", dpi=dpi)
    finally:
        plt.close(fig)
