"""documents.pyhanko_hooks against the pinned pyHanko: the fast hex-string reader and token
reader give exactly what pyHanko's own give (value, and where the stream is left), and the
hex reader fails where pyHanko's fails."""

from __future__ import annotations

import inspect
import io
import random
from importlib.metadata import version
from typing import Any

import pytest
from pyhanko.pdf_utils import generic, misc

from documents import pyhanko_hooks


def both(data: bytes) -> tuple[object, object]:
    """(value or exception type, stream position after) from pyHanko's reader and the hook's."""
    results = []
    for reader in (pyhanko_hooks._original_read_hex, pyhanko_hooks.read_hex_string):
        stream = io.BytesIO(data)
        try:
            value: Any = reader(stream)
            results.append((type(value), bytes(value.original_bytes), stream.tell()))
        except Exception as exc:  # the point is to compare failures too
            results.append((type(exc), b"", -1))
    return results[0], results[1]


def test_the_hook_is_installed_where_pyhanko_looks_for_it() -> None:
    import documents.verify  # noqa: F401  (installs the hooks)

    assert version("pyhanko").startswith(pyhanko_hooks.PYHANKO_SERIES)
    # read_object looks the function up in its module at each call, so this is what it uses.
    assert generic.read_hex_string_from_stream is pyhanko_hooks.read_hex_string
    assert "read_hex_string_from_stream(stream)" in inspect.getsource(generic.read_object)
    # read_until_delimiter and read_until_whitespace look it up in their module too.
    assert misc._read_until_class is pyhanko_hooks.read_until_class
    assert "_read_until_class(" in inspect.getsource(misc.read_until_delimiter)
    assert "_read_until_class(" in inspect.getsource(misc.read_until_whitespace)


@pytest.mark.parametrize("data", [
    b"<>", b"<48656C6C6F> rest", b"<48656c6c6f>", b"<4 8\n65\t6C\r6C 6F >tail", b"<486>",
    b"<" + b"0A" * 20_000 + b">", b"<" + b"ab" * 9000 + b"\n" + b"cd" * 9000 + b">x",
    b"<48 % a comment\n 65>", b"<48X65>", b"<4865", b"<", b"<48>>", b"<\x0048>",
])
def test_the_same_value_or_the_same_failure_as_pyhanko(data: bytes) -> None:
    original, hooked = both(data)
    assert hooked == original


def test_random_hex_strings_read_alike() -> None:
    rnd = random.Random(5)
    alphabet = b"0123456789abcdefABCDEF \n\r\t\x0c\x00%>gZ("
    for _ in range(500):
        body = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 60)))
        data = b"<" + body + (b">" if rnd.random() < 0.9 else b"") + b" after"
        original, hooked = both(data)
        assert hooked == original, data


def tokens_alike(data: bytes, class_chars: bytes, maxchars: int | None) -> None:
    results = []
    for reader in (pyhanko_hooks._original_read_until_class, pyhanko_hooks.read_until_class):
        stream = io.BytesIO(data)
        stream.seek(1)
        value = reader(class_chars, stream, maxchars)
        results.append((value, stream.tell()))
    assert results[1] == results[0], (data, class_chars, maxchars)


def test_random_tokens_read_alike() -> None:
    rnd = random.Random(7)
    delimiters = misc.PDF_WHITESPACE + misc.PDF_DELIMITERS
    alphabet = b"abcXYZ019#.-+" + delimiters
    for _ in range(2000):
        body = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 200)))
        if rnd.random() < 0.3:  # long tokens, past one block
            body = b"N" * rnd.randrange(60, 300) + body
        maxchars = rnd.choice([None, None, 1, 5, 20, 64, 65, 200])
        tokens_alike(b"/" + body, rnd.choice([delimiters, misc.PDF_WHITESPACE]), maxchars)
