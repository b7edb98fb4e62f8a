"""Every string the platform ships exists in Kazakh, Russian and English, and pages follow the
reader's language: their own choice first, then the browser's Accept-Language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from odr.i18n import LANGUAGES, LOCALE_DIR, negotiate

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [
    ("odr/**.py", "python"),
    ("rooms/**.py", "python"),
    ("documents/**.py", "python"),
    ("frontend/templates/**.html", "jinja2"),
]
PLACEHOLDER = re.compile(r"%\(\w+\)\w")


def shipped_messages() -> dict[str, tuple[str, ...]]:
    """Every translatable message in the code and templates, as a translator would receive it."""
    found: dict[str, tuple[str, ...]] = {}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT),
        method_map=METHODS,
        keywords=KEYWORDS,
        options_map={"frontend/templates/**.html": {"extensions": "jinja2.ext.i18n",
                                                     "trim_blocks": "true",
                                                     "lstrip_blocks": "true"}},
    ):
        ids = message if isinstance(message, tuple) else (message,)
        if ids[0]:
            found[ids[0]] = tuple(i for i in ids if i)
    return found


def test_extraction_finds_the_shipped_strings() -> None:
    messages = shipped_messages()
    # A guard against an extractor that silently finds nothing (then every check would pass).
    assert "Request mediation" in messages
    assert "Wrong e-mail or password." in messages
    assert "The other side's name" in messages
    assert len(messages) > 200


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_shipped_string_is_translated(language: str) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    problems: list[str] = []
    for msgid, ids in shipped_messages().items():
        entry = catalog.get(msgid)
        if entry is None:
            problems.append(f"missing: {msgid!r}")
            continue
        strings = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
        if not all(strings) or entry.fuzzy:
            problems.append(f"untranslated: {msgid!r}")
            continue
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            # A plural form may leave out the count (e.g. "one minute"); nothing else.
            got = set(PLACEHOLDER.findall(text or ""))
            if got != wanted and got != wanted - {"%(num)d"}:
                problems.append(f"placeholders differ: {msgid!r} -> {text!r}")
    assert not problems, f"{language}: {len(problems)} problems:\n" + "\n".join(problems[:50])


def test_language_negotiation_order() -> None:
    assert negotiate("kk", "ru-RU,ru;q=0.9,en;q=0.5", "ru") == "kk"
    assert negotiate(None, "de-DE,de;q=0.9,en;q=0.8,ru;q=0.7", "ru") == "en"
    assert negotiate(None, "ru;q=0.4,kk;q=0.9", "en") == "kk"
    assert negotiate(None, "fr", "ru") == "ru"
    assert negotiate("xx", None, "kk") == "kk"
