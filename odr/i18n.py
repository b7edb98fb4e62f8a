"""Kazakh, Russian and English: gettext catalogues read from the shipped .po files at start."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("kk", "ru", "en")
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
LOCALE_DIR = Path(__file__).parent / "locale"
# A choice by the grammatical gender of the person a sentence speaks of, written into a
# translation as {masculine|feminine|unspecified} (a small form of ICU's "select"): Russian's past
# tense needs it ("{подал|подала|подал(а)}"), Kazakh and English have no such braces.
GENDER_CHOICE = re.compile(r"\{([^{}|]*)\|([^{}|]*)\|([^{}|]*)\}")
GENDER_FORMS = ("masculine", "feminine", "unspecified")


def load_translations(language: str) -> Translations:
    """Compile the language's .po in memory, so no build step can leave a stale .mo behind."""
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return Translations()
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


@dataclass(frozen=True)
class Translator:
    """The gettext functions of one language, handed to templates and error handlers."""

    language: str
    translations: Translations

    def gettext(self, message: str, **params: Any) -> str:
        text = self.translations.ugettext(message)
        return text % params if params else text

    def gettext_of(self, gender: str, message: str, **params: Any) -> str:
        """A sentence about a person, in the form their grammatical gender asks for."""
        form = GENDER_FORMS.index(gender) + 1 if gender in GENDER_FORMS else 3
        text = GENDER_CHOICE.sub(lambda m: m.group(form), self.translations.ugettext(message))
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        text = self.translations.ungettext(singular, plural, n)
        return text % ({"num": n} | params)


class Catalogues:
    def __init__(self, default_language: str) -> None:
        self.default = default_language if default_language in LANGUAGES else "ru"
        self._translators = {lang: Translator(lang, load_translations(lang)) for lang in LANGUAGES}

    def get(self, language: str) -> Translator:
        return self._translators.get(language) or self._translators[self.default]


def negotiate(chosen: str | None, accept_language: str | None, default: str) -> str:
    """The user's own choice first, then the browser's ``Accept-Language``, then the default."""
    if chosen in LANGUAGES:
        return chosen
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")):
            pieces = part.strip().split(";")
            tag = pieces[0].strip().lower()
            quality = 1.0
            for p in pieces[1:]:
                if p.strip().startswith("q="):
                    try:
                        quality = float(p.strip()[2:])
                    except ValueError:
                        quality = 0.0
            ranked.append((-quality, index, tag))
        for _q, _i, tag in sorted(ranked):
            base = tag.split("-")[0]
            if base in LANGUAGES:
                return base
    return default
