"""English is the source language: its catalogue repeats each message, so a missing entry shows."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

path = Path(sys.argv[1] if len(sys.argv) > 1 else "odr/locale/en/LC_MESSAGES/messages.po")
with path.open("rb") as f:
    catalog = read_po(f, locale="en")
for message in catalog:
    if not message.id:
        continue
    if isinstance(message.id, tuple | list):
        if not all(message.string):
            message.string = (message.id[0], message.id[1])
    elif not message.string:
        message.string = message.id
    message.flags.discard("fuzzy")
with path.open("wb") as f:
    write_po(f, catalog, width=100, omit_header=False)
