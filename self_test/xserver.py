"""A virtual X server for the window tests, and screenshots of it without ImageMagick.

`VirtualDisplay` starts `Xvfb -displayfd`, which picks a free display number itself (no race
with other test runs on the same machine). `screenshot_png` grabs the root window with `xwd`
(x11-apps) and converts the XWD dump to PNG with numpy + Pillow (both already installed for
matplotlib).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

__all__ = ["VirtualDisplay", "display_available", "screenshot_png", "read_xwd"]


class VirtualDisplay:
    """An Xvfb server on a free display number; use as a context manager."""

    def __init__(self, width: int = 1440, height: int = 900, depth: int = 24) -> None:
        self.size = (width, height, depth)
        self.proc: subprocess.Popen | None = None
        self.display = ""

    def __enter__(self) -> "VirtualDisplay":
        exe = shutil.which("Xvfb")
        if exe is None:
            raise FileNotFoundError("Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb)")
        r, w = os.pipe()
        width, height, depth = self.size
        self.proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", f"{width}x{height}x{depth}",
                                      "-nolisten", "tcp", "-noreset"], pass_fds=(w,),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(w)
        number = b""
        deadline = time.monotonic() + 20
        with os.fdopen(r, "rb") as fh:
            while not number.endswith(b"\n") and time.monotonic() < deadline:
                chunk = fh.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip():
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            self.__exit__(None, None, None)
            raise RuntimeError(f"Xvfb did not start: {err.strip()[-500:]}")
        self.display = f":{int(number)}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY"))


def read_xwd(data: bytes) -> np.ndarray:
    """Decode an XWD (X Window Dump, ZPixmap, 24/32 bits per pixel) into an RGB array."""
    header = np.frombuffer(data[:100], dtype=">u4")
    (header_size, version, fmt, depth, width, height, _xoff, byte_order, _unit, _bit_order, _pad,
     bits_per_pixel, bytes_per_line, _visual, red_mask, green_mask, blue_mask, _bits_rgb,
     _cmap_entries, ncolors, *_rest) = (int(x) for x in header[:25])
    if version != 7 or fmt != 2 or bits_per_pixel not in (24, 32):
        raise ValueError(f"unsupported XWD dump: version {version}, format {fmt}, {bits_per_pixel} bits per pixel")
    offset = header_size + ncolors * 12
    raw = np.frombuffer(data[offset:offset + bytes_per_line * height], dtype=np.uint8)
    rows = raw.reshape(height, bytes_per_line)
    bpp = bits_per_pixel // 8
    px = rows[:, : width * bpp].reshape(height, width, bpp).astype(np.uint32)
    if byte_order == 0:  # LSBFirst
        value = sum(px[:, :, i] << (8 * i) for i in range(bpp))
    else:
        value = sum(px[:, :, i] << (8 * (bpp - 1 - i)) for i in range(bpp))

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((value & mask) >> shift).astype(np.uint8)

    return np.dstack([channel(red_mask), channel(green_mask), channel(blue_mask)])


def screenshot_png(display: str, path: Path) -> np.ndarray:
    """Save the whole screen of `display` as a PNG at `path`; returns the RGB pixels."""
    from PIL import Image

    exe = shutil.which("xwd")
    if exe is None:
        raise FileNotFoundError("xwd is not installed (Debian/Ubuntu: apt-get install x11-apps)")
    out = subprocess.run([exe, "-root", "-silent", "-display", display], capture_output=True, timeout=30,
                         check=True)
    rgb = read_xwd(out.stdout)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return rgb
