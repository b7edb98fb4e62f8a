"""What the media relay raises for a participant's signalling message it cannot take."""

from __future__ import annotations


class SignallingRefused(ValueError):
    """An offer, answer or candidate the relay cannot take (malformed, or out of order, such as
    an answer when no offer waits); nothing changed.

    The client's mistake, so the room answers it as an ordinary refusal and keeps the socket;
    any other exception from the relay is a fault of ours. A ValueError, as callers expected.
    """
