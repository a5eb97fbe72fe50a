"""Draw the TTS Turbo icon (waveform bars on a rounded square) and write ttsturbo.ico.

Pure stdlib (zlib + struct) so the icon is reproducible on any build machine; the .ico is committed and this
script only needs re-running when the design changes:  python installer/assets/make_icon.py
"""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 256)
BG = (24, 64, 140)                             # deep blue
FG = (255, 255, 255)
BARS = (0.35, 0.6, 0.95, 0.7, 0.45, 0.8, 0.5)  # bar heights as a fraction of the inner box


def coverage(x: float, y: float, n: int) -> tuple[float, float]:
    """(background alpha, foreground alpha) at pixel centre (x, y) of an n x n icon."""
    r, pad = 0.2 * n, 0.04 * n                 # corner radius, outer margin
    lo, hi = pad, n - pad
    cx, cy = min(max(x, lo + r), hi - r), min(max(y, lo + r), hi - r)
    d = math.hypot(x - cx, y - cy) - r         # signed distance to the rounded square
    bg = min(max(0.5 - d, 0.0), 1.0)
    inner, width = hi - lo - 2 * pad, (hi - lo - 2 * pad) / (2 * len(BARS) - 1)
    i = int((x - lo - pad) // width)
    fg = 0.0
    if 0 <= x - lo - pad < inner and i % 2 == 0:
        half = BARS[i // 2] * inner / 2
        fg = min(max(half - abs(y - n / 2) + 0.5, 0.0), 1.0)
    return bg, fg


def render(n: int) -> bytes:
    """RGBA rows, top to bottom, 2x2 supersampled."""
    rows = bytearray()
    for py in range(n):
        rows.append(0)                         # PNG filter byte: none
        for px in range(n):
            bg = fg = 0.0
            for sx, sy in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
                b, f = coverage(px + sx, py + sy, n)
                bg, fg = bg + b / 4, fg + f / 4
            fg = min(fg, bg)
            rgb = [round(BG[c] * (1 - fg / bg if bg else 0) + FG[c] * (fg / bg if bg else 0)) for c in range(3)]
            rows += bytes(rgb + [round(255 * bg)])
    return bytes(rows)


def png(n: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    head = struct.pack(">IIBBBBB", n, n, 8, 6, 0, 0, 0)               # 8-bit RGBA
    idat = chunk(b"IDAT", zlib.compress(render(n), 9))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + idat + chunk(b"IEND", b"")


def ico(sizes=SIZES) -> bytes:
    """ICO container with PNG-compressed entries (supported since Windows Vista, and by NSIS)."""
    images = [png(n) for n in sizes]
    out, offset = bytearray(struct.pack("<HHH", 0, 1, len(images))), 6 + 16 * len(images)
    for n, data in zip(sizes, images, strict=True):
        out += struct.pack("<BBBBHHII", n % 256, n % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return bytes(out + b"".join(images))


if __name__ == "__main__":
    target = Path(__file__).with_name("ttsturbo.ico")
    target.write_bytes(ico())
    print(f"wrote {target} ({target.stat().st_size} bytes)")
