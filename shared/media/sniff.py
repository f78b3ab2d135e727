"""Cheap structural checks that tell a truncated upload from a file that is not media at all.

Demuxers say "invalid data" for both; these read a few box/element headers (no media data) and compare
the sizes the file declares with its real size. MP4/MOV (ISO BMFF) and Matroska/WebM are covered.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

_ISO_TOP_LEVEL = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MATROSKA_SEGMENT = b"\x18\x53\x80\x67"
_MAX_BOXES = 100_000


def truncation_reason(path: Path) -> str | None:
    """Why ``path`` looks cut short, or None when it does not (or is in a format not checked here).

    Raises OSError when the file cannot be read.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) == 8 and head[4:8] in _ISO_TOP_LEVEL:
            return _iso_bmff_reason(f, size)
        if head[:4] == _EBML_MAGIC:
            return _matroska_reason(f, size)
    return None


def _is_fourcc(kind: bytes) -> bool:
    return len(kind) == 4 and all(0x20 <= b < 0x7F for b in kind)


def _iso_bmff_reason(f: BinaryIO, size: int) -> str | None:
    """Walk the top-level boxes: one that runs past the end, or no ``moov`` (the index), means cut short."""
    offset = 0
    seen_moov = False
    for _ in range(_MAX_BOXES):
        if offset >= size:
            break
        f.seek(offset)
        header = f.read(16)
        if len(header) < 8:
            if seen_moov:
                break  # a few stray bytes after complete boxes; the index shows whether data is missing
            return f"the file ends inside a box header at byte {offset}"
        box_size = int.from_bytes(header[:4], "big")
        kind = header[4:8]
        if not _is_fourcc(kind):
            break  # trailing bytes that are not a box: not a truncation
        if box_size == 1:
            if len(header) < 16:
                return f"the file ends inside the '{kind.decode()}' box header at byte {offset}"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # the box runs to the end of the file
            seen_moov = seen_moov or kind == b"moov"
            break
        if box_size < 8:
            return f"the '{kind.decode()}' box at byte {offset} has an invalid size ({box_size})"
        if offset + box_size > size:
            return (
                f"the '{kind.decode()}' box at byte {offset} declares {box_size} bytes "
                f"but only {size - offset} remain"
            )
        seen_moov = seen_moov or kind == b"moov"
        offset += box_size
    if not seen_moov:
        return "it has no 'moov' box (the index an MP4/MOV keeps, often at the end of the file)"
    return None


def _read_vint(f: BinaryIO) -> tuple[int, bool] | None:
    """Read one EBML variable-length size: (value, all value bits set = "unknown"), or None at EOF."""
    first = f.read(1)
    if not first:
        return None
    lead = first[0]
    length = 1
    while length <= 8 and not lead & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    rest = f.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = lead & (0xFF >> length)
    for b in rest:
        value = (value << 8) | b
    return value, value == (1 << (7 * length)) - 1


def _matroska_reason(f: BinaryIO, size: int) -> str | None:
    """Compare the Segment element's declared size with what follows it in the file."""
    f.seek(4)
    header_size = _read_vint(f)
    if header_size is None:
        return "the file ends inside the EBML header"
    f.seek(header_size[0], 1)
    segment_id = f.read(4)
    if len(segment_id) < 4:
        return "the file ends before the Matroska segment starts"
    if segment_id != _MATROSKA_SEGMENT:
        return None
    segment_size = _read_vint(f)
    if segment_size is None:
        return "the file ends inside the Matroska segment header"
    value, unknown = segment_size
    if unknown:  # live recordings may leave the size unknown: nothing to compare
        return None
    available = size - f.tell()
    if value > available:
        return f"the Matroska segment declares {value} bytes but only {available} remain"
    return None
