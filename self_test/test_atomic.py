"""bot/atomic.py: the old file survives a failed write; no temp files are left behind."""

from __future__ import annotations

import json
import stat

import pytest

from bot.atomic import atomic_file, atomic_write_json


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "state.json"
    atomic_write_json(p, {"balance": 1000})
    with pytest.raises(RuntimeError):
        with atomic_file(p) as fh:
            fh.write(b'{"balance": ')
            raise RuntimeError("crash in the middle of a write")
    assert json.loads(p.read_text()) == {"balance": 1000}
    assert [x.name for x in tmp_path.iterdir()] == ["state.json"]
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_creates_missing_folders(tmp_path):
    p = tmp_path / "a" / "b" / "c.json"
    atomic_write_json(p, [1, 2])
    assert json.loads(p.read_text()) == [1, 2]
