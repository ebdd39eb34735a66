"""A tiny PNG decoder (8-bit RGB/RGBA/grey, not interlaced: what Chromium's screenshots are), zlib only."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


@dataclass(frozen=True)
class Image:
    """Decoded pixels as RGB triples, row by row."""

    width: int
    height: int
    rows: list[list[tuple[int, int, int]]]

    def colors(self, box: tuple[int, int, int, int] | None = None) -> Counter[tuple[int, int, int]]:
        """How many pixels of each colour lie in `box` (x0, y0, x1, y1; default: the whole image)."""
        x0, y0, x1, y1 = box or (0, 0, self.width, self.height)
        counts: Counter[tuple[int, int, int]] = Counter()
        for row in self.rows[y0:y1]:
            counts.update(row[x0:x1])
        return counts


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data: bytes) -> Image:
    """Decode a PNG; ValueError for anything this decoder does not handle."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}")
    channels = _CHANNELS[color]
    stride = width * channels
    raw = zlib.decompress(bytes(idat))
    previous = bytearray(stride)
    rows: list[list[tuple[int, int, int]]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
            elif kind != 0:
                raise ValueError(f"bad filter {kind} in row {y}")
        previous = line
        if channels >= 3:
            rows.append([(line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels)])
        else:
            rows.append([(line[i], line[i], line[i]) for i in range(0, stride, channels)])
    return Image(width, height, rows)
