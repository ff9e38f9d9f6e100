"""Reading a JPEG's marker structure without decoding it: how many scans it holds.

Why count scans: a progressive JPEG may hold any number of scans, and the decoder walks
every 8x8 block of the components a scan covers, even when the scan holds no data. A
10-byte empty scan therefore costs 1-13 ms at 16-40 MP in libjpeg-turbo (measured: 10,000
of them, 100 KB, take 24 s at 16 MP), while the file stays far below the 4 MiB limit. The
pixel limit does not bound this; only a limit on scans does. libjpeg-turbo's own defence
(`TJPARAM_SCANLIMIT`, djpeg `-maxscans`) counts scans while decoding; Pillow does not
expose it, so we count them here, before the decoder runs.

The walk follows the structure the decoder itself follows (ITU-T T.81 B.1.1, and
libjpeg's `next_marker`): a marker is 0xFF followed by a byte other than 0x00 and 0xFF.
- Segments with a length are skipped by their length, so an APPn segment (an EXIF or JFXX
  thumbnail is a whole JPEG with its own scans) is never looked into.
- Inside entropy-coded data 0xFF00 is a stuffed 0xFF data byte (not a marker), runs of
  0xFF are fill bytes, and 0xFFD0-0xFFD7 are restart markers inside the scan: none of
  them ends the scan. Likewise TEM (0xFF01) stands alone.
- Bytes between segments that are not a marker are skipped, as libjpeg does (it warns).
- The walk ends at EOI or where the data ends; a truncated or malformed file is the
  decoder's to refuse, this only counts.
"""

from __future__ import annotations

import re

SOI = b"\xff\xd8"
_SOS = 0xDA
_EOI = 0xD9
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-RST7: no length follows

# The next marker at or after a position: 0xFF then a byte that is neither 0x00 (byte
# stuffing) nor 0xFF (fill). Matching in C keeps the walk over megabytes of entropy-coded
# data at a few ms; Python only runs once per segment.
_MARKER = re.compile(rb"\xff[^\x00\xff]")


def count_scans(data: bytes) -> int:
    """Number of scans (SOS segments) the decoder would read from `data`, a JPEG.

    Cost: one regex search per segment, so ~0.4 us per segment and a few ms per MiB of
    entropy-coded data; 4 MiB of nothing but empty scans (~420,000) count in ~0.2 s.
    """
    if not data.startswith(SOI):
        raise ValueError("not a JPEG: no SOI marker")
    end = len(data)
    pos, scans = len(SOI), 0
    search = _MARKER.search
    while True:
        found = search(data, pos)
        if found is None:
            return scans  # truncated: the decoder refuses it
        marker, pos = data[found.start() + 1], found.end()
        if marker == _EOI:
            return scans
        if marker in _STANDALONE:
            continue
        if pos + 2 > end:
            return scans
        length = int.from_bytes(data[pos : pos + 2], "big")  # includes its own two bytes
        if length < 2:
            return scans  # libjpeg refuses a segment shorter than its length field
        pos += length
        if marker == _SOS:
            scans += 1
