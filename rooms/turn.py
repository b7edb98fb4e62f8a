"""TURN access for the room page: time-limited credentials from a secret shared with the TURN
server (the "TURN REST API" scheme that coturn implements as ``use-auth-secret``).

A party behind a strict NAT or a mobile operator's firewall reaches the relay only through
TURN. Handing out a fixed TURN password would let anyone who reads one page use the server for
ever; with this scheme the username carries its own expiry, the password is the HMAC of the
username under the shared secret, and the TURN server checks both without asking us.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from odr.settings import Settings


def turn_credential(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)), as coturn computes it."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_server(settings: Settings, user_id: int, *, now: float | None = None) -> dict[str, Any]:
    """One ICE server entry for ``user_id``, valid for ``turn_ttl_seconds`` from ``now``.

    The username is ``<expiry>:<user id>``: the TURN server's logs show which account used it,
    but no name or address.
    """
    expiry = int(time.time() if now is None else now) + settings.turn_ttl_seconds
    username = f"{expiry}:{user_id}"
    return {"urls": list(settings.turn_urls), "username": username,
            "credential": turn_credential(settings.turn_secret, username)}


def ice_servers_for(settings: Settings, user_id: int) -> list[dict[str, Any]]:
    """The configured STUN/TURN servers, plus our TURN servers with fresh credentials."""
    servers: list[dict[str, Any]] = [dict(server) for server in settings.ice_servers]
    if settings.turn_secret and settings.turn_urls:
        servers.append(turn_server(settings, user_id))
    return servers
