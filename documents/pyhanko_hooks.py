"""Every use of pyHanko's private internals, in one place (pyHanko is pinned in pyproject.toml).

- ``fast_hex_strings``: pyHanko reads a PDF hex string one character at a time through its
  general tokenizer. A signature's ``/Contents`` is such a string of several thousand digits,
  read again for each revision the difference analysis looks at: about a third of the time of
  verifying a sealed agreement (profiled with cProfile: 14 reads, ~100,000 tokenizer calls).
  The hook reads a well-formed hex string (digits and whitespace up to ``>``) in one go and
  hands anything else (comments, bad digits, a missing ``>``) to pyHanko's own reader, so every
  odd case behaves and fails exactly as before. ``tests/drafts/test_pyhanko_hooks.py`` checks
  both readers agree, and that the internal is still where the hook expects it.
"""

from __future__ import annotations

import binascii
import os
import re
from typing import IO, Any

from pyhanko.pdf_utils import generic

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


def install() -> None:
    """Install the hooks (once; installing again changes nothing)."""
    generic.read_hex_string_from_stream = read_hex_string
