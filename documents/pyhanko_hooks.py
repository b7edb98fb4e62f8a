"""Every use of pyHanko's private internals, in one place (pyHanko is pinned in pyproject.toml).

- ``fast_hex_strings``: pyHanko reads a PDF hex string one character at a time through its
  general tokenizer. A signature's ``/Contents`` is such a string of several thousand digits,
  read again for each revision the difference analysis looks at: about a third of the time of
  verifying a sealed agreement (profiled with cProfile: 14 reads, ~100,000 tokenizer calls).
  The hook reads a well-formed hex string (digits and whitespace up to ``>``) in one go and
  hands anything else (comments, bad digits, a missing ``>``) to pyHanko's own reader, so every
  odd case behaves and fails exactly as before. ``tests/drafts/test_pyhanko_hooks.py`` checks
  both readers agree, and that the internal is still where the hook expects it.
- ``read_until_class``: the tokenizer reads every name and number through
  ``misc._read_until_class``, a generator that yields one byte at a time: about a tenth of the
  time of verifying a sealed agreement (32,000 generator steps per verification). The hook
  finds the end of the token with a regular expression on a small block read at once, then
  leaves the stream exactly where pyHanko would (just past the byte that ended the token).
"""

from __future__ import annotations

import binascii
import os
import re
from typing import IO, Any

from pyhanko.pdf_utils import generic, misc

#: The pyHanko release series the hooks were written and tested against.
PYHANKO_SERIES = "0.38."

_WHITESPACE = b"\x00\t\n\x0c\r "
_NOT_HEX = re.compile(rb"[^0-9a-fA-F]")
_CHUNK = 16384

_original_read_hex = generic.read_hex_string_from_stream


def read_hex_string(stream: IO[bytes]) -> Any:
    """pyHanko's ``read_hex_string_from_stream``, fast for the well-formed case."""
    start = stream.tell()
    stream.read(1)  # the opening "<"
    chunks: list[bytes] = []
    while True:
        block = stream.read(_CHUNK)
        if not block:  # no closing ">": let pyHanko report it
            break
        end = block.find(b">")
        if end < 0:
            chunks.append(block)
            continue
        digits = (b"".join(chunks) + block[:end]).translate(None, _WHITESPACE)
        if _NOT_HEX.search(digits):
            break
        stream.seek(end + 1 - len(block), os.SEEK_CUR)  # just past the ">"
        if len(digits) % 2:
            digits += b"0"  # as pyHanko (and the PDF standard): a missing last digit is 0
        return generic.pdf_string(binascii.unhexlify(digits))
    stream.seek(start)
    return _original_read_hex(stream)


_original_read_until_class = misc._read_until_class
_TOKEN_BLOCK = 64  # PDF names and numbers are short; a longer one takes a few blocks
_CLASS_PATTERNS: dict[bytes, re.Pattern[bytes]] = {}


def read_until_class(class_chars: bytes, stream: IO[bytes], maxchars: int | None = None
                     ) -> tuple[bytes, bool]:
    """pyHanko's ``misc._read_until_class``: the bytes before the first of ``class_chars``
    (which is consumed), and whether the stream ended first; at most ``maxchars`` bytes."""
    if maxchars == 0:  # an edge pyHanko's own code handles in its own way
        return _original_read_until_class(class_chars, stream, maxchars)  # type: ignore[no-any-return]
    pattern = _CLASS_PATTERNS.get(class_chars)
    if pattern is None:
        pattern = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in class_chars) + b"]")
        _CLASS_PATTERNS[class_chars] = pattern
    start = stream.tell()
    taken = b""
    while True:
        want = _TOKEN_BLOCK if maxchars is None else min(_TOKEN_BLOCK, maxchars - len(taken))
        block = stream.read(want)
        found = pattern.search(block)
        if found is not None:
            stream.seek(start + len(taken) + found.start() + 1)
            return taken + block[:found.start()], False
        taken += block
        if len(block) < want:  # the stream ended
            return taken, True
        if maxchars is not None and len(taken) >= maxchars:
            return taken, False


def install() -> None:
    """Install the hooks (once; installing again changes nothing)."""
    generic.read_hex_string_from_stream = read_hex_string
    misc._read_until_class = read_until_class
