"""TURN access handed to the room page (``rooms.turn``), checked against a real coturn.

The room page carries credentials in coturn's REST-API scheme; coturn, knowing only the shared
secret, grants a relay allocation with them, and refuses them once they have expired or when they
were made with another secret.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from odr.models import CaseStatus
from odr.settings import Settings
from rooms.turn import turn_credential, turn_server
from tests.harness import Platform, open_platform

SECRET = "shared-with-coturn"
TTL = 3600


@pytest.fixture
def turn_platform(tmp_path: Path, template_db: Path) -> Iterator[Platform]:
    with open_platform(tmp_path, template_db, turn_secret=SECRET, turn_ttl_seconds=TTL,
                       turn_urls=["turn:turn.example.kz:3478", "turns:turn.example.kz:5349"],
                       ice_servers=[{"urls": "stun:stun.example.kz:3478"}]) as p:
        yield p


def room_config(platform: Platform) -> tuple[dict[str, Any], int]:
    cast = platform.cast()
    case_id = platform.build_case(cast, CaseStatus.consented)
    page = cast.party_b.client.get(f"/cases/{case_id}/room")
    assert page.status_code == 200, page.text
    found = re.search(r'<script type="application/json" id="room-config">(.*?)</script>',
                      page.text, re.S)
    assert found
    return json.loads(found.group(1)), cast.party_b.id


def test_the_room_page_hands_out_time_limited_turn_credentials(turn_platform: Platform) -> None:
    config, user_id = room_config(turn_platform)
    stun_entry, turn = config["ice_servers"]
    assert stun_entry == {"urls": "stun:stun.example.kz:3478"}
    assert turn["urls"] == ["turn:turn.example.kz:3478", "turns:turn.example.kz:5349"]
    expiry, who = turn["username"].split(":")
    assert who == str(user_id)
    assert abs(int(expiry) - (time.time() + TTL)) < 60
    assert turn["credential"] == turn_credential(SECRET, turn["username"])
    assert SECRET not in json.dumps(config)


def test_without_a_secret_no_turn_entry_is_made(platform: Platform) -> None:
    config, _ = room_config(platform)
    assert config["ice_servers"] == []


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[int]:
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.skip("coturn not installed (.ci/run installs it)")
    port = free_udp_port()
    relay = 49152 + port % 10000
    proc = subprocess.Popen(
        [exe, "-n", "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=odr.test",
         "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
         f"--min-port={relay}", f"--max-port={relay + 50}", "--no-tls", "--no-dtls", "--no-cli",
         "--allow-loopback-peers", "--log-file=stdout", "--simple-log", "--no-stdout-log",
         f"--db={tmp_path / 'turndb'}", f"--pidfile={tmp_path / 'turn.pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def allocate(port: int, username: str, password: str) -> tuple[str, int]:
    """A relayed address from coturn, trying until it listens (UDP gives no other sign)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            transport, _ = await asyncio.wait_for(create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", port), username, password), 2)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            continue
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        transport.close()
        return relayed


def settings_for_turn(**overrides: object) -> Settings:
    return Settings(turn_secret=SECRET, turn_urls=["turn:127.0.0.1"], turn_ttl_seconds=TTL,
                    **overrides)  # type: ignore[arg-type]


def test_coturn_grants_an_allocation_with_the_credentials(coturn: int) -> None:
    server = turn_server(settings_for_turn(), 42)
    relayed = asyncio.run(allocate(coturn, server["username"], server["credential"]))
    assert relayed[0] == "127.0.0.1" and relayed[1] > 0


@pytest.mark.parametrize("how", ["expired", "other secret"])
def test_coturn_refuses_expired_or_forged_credentials(coturn: int, how: str) -> None:
    good = turn_server(settings_for_turn(), 42)
    asyncio.run(allocate(coturn, good["username"], good["credential"]))  # coturn is up
    if how == "expired":
        bad = turn_server(settings_for_turn(), 42, now=time.time() - TTL - 60)
    else:
        bad = {**good, "credential": turn_credential("not-the-secret", good["username"])}
    with pytest.raises(stun.TransactionFailed) as refused:
        asyncio.run(allocate(coturn, bad["username"], bad["credential"]))
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
