"""Yjs clients editing drafts over real WebSockets against a real server: convergence,
read-only and frozen drafts refusing writes in both message kinds, and no loss on a crash."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.drafts.scenario import DraftScene, draft_scene
from tests.drafts.yclient import YClient, raw_update, step2_message, update_message
from tests.live import live_server


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[DraftScene]:
    with live_server(tmp_path) as server:
        yield draft_scene(server)


def test_three_clients_editing_at_once_converge_and_the_server_holds_it(
    scene: DraftScene,
) -> None:
    async def run() -> None:
        people = (scene.mediator, scene.party_a, scene.party_b)
        clients = [YClient(scene.ws(), p.cookie) for p in people]
        for c in clients:
            await c.__aenter__()
        try:
            await asyncio.gather(*(asyncio.wait_for(c.synced.wait(), 10) for c in clients))
            for round_ in range(5):
                for i, c in enumerate(clients):
                    c.add_paragraph(f"clause {round_}.{i} from client {i}")
            expected = {f"clause {r}.{i} from client {i}" for r in range(5) for i in range(3)}

            def has_all(c: YClient) -> bool:
                return expected <= set(c.text().splitlines())

            await asyncio.gather(*(c.wait_for(has_all) for c in clients))
            texts = {c.text() for c in clients}
            assert len(texts) == 1  # the same document everywhere, in the same order
        finally:
            for c in clients:
                await c.close()
        assert scene.text() == texts.pop()

    asyncio.run(run())


def test_observer_reads_but_cannot_write_through_update_or_sync_step_2(
    scene: DraftScene,
) -> None:
    observer = scene.observer()
    before = scene.text()

    async def run() -> None:
        async with YClient(scene.ws(), observer.cookie) as client:
            await asyncio.wait_for(client.synced.wait(), 10)
            assert client.text() == before  # reading works
            await client.send_raw(update_message(raw_update("written through update")))
            await client.wait_for(lambda c: len(c.denied) >= 1)
            await client.send_raw(step2_message(raw_update("written through step 2")))
            await client.wait_for(lambda c: len(c.denied) >= 2)
            client.add_paragraph("typed by the observer")  # a normal client's local edit
            await client.wait_for(lambda c: len(c.denied) >= 3)
            assert client.denied == ["read-only"] * 3

    asyncio.run(run())
    assert scene.text() == before
    draft = scene.mediator.get(f"/api/v1/drafts/{scene.draft_id}").json()
    assert draft["version"] == 1  # nothing stored


def test_a_frozen_draft_refuses_every_write_and_stays_identical(scene: DraftScene) -> None:
    clause = "1. The debt is repaid in six monthly instalments."

    async def edit() -> None:
        async with YClient(scene.ws(), scene.party_a.cookie) as client, \
                YClient(scene.ws(), scene.party_b.cookie) as other:
            await asyncio.wait_for(client.synced.wait(), 10)
            await asyncio.wait_for(other.synced.wait(), 10)
            client.add_paragraph(clause)
            # Forwarded to others only once stored.
            await other.wait_for(lambda c: clause in c.text())

    asyncio.run(edit())
    refused = scene.mediator.post(f"/api/v1/drafts/{scene.draft_id}/freeze")
    assert refused.status_code == 409  # the parties have not approved
    for party in (scene.party_a, scene.party_b):
        assert party.post(f"/api/v1/drafts/{scene.draft_id}/approve").status_code == 200
    frozen = scene.mediator.post(f"/api/v1/drafts/{scene.draft_id}/freeze")
    assert frozen.status_code == 200, frozen.text
    text = scene.text()
    assert frozen.json()["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert "six monthly instalments" in text

    async def attack() -> None:
        async with YClient(scene.ws(), scene.mediator.cookie) as client:
            await asyncio.wait_for(client.synced.wait(), 10)
            for n in range(3):
                await client.send_raw(update_message(raw_update(f"late change {n}")))
                await client.send_raw(step2_message(raw_update(f"late step2 {n}")))
            await client.wait_for(lambda c: len(c.denied) >= 6)
            assert set(client.denied) == {"frozen"}

    asyncio.run(attack())
    assert scene.text() == text
    draft = scene.mediator.get(f"/api/v1/drafts/{scene.draft_id}").json()
    assert draft["frozen"] is True and draft["frozen_sha256"] == frozen.json()["sha256"]
    case = scene.mediator.get(f"/api/v1/cases/{scene.case_id}").json()
    assert case["status"] == "agreement_drafted"


def test_refusals_before_accept_and_malformed_messages_close(scene: DraftScene) -> None:
    stranger_cookie = "odr_session=not-a-session"

    async def run() -> None:
        for cookie in (stranger_cookie, None):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with YClient(scene.ws(), cookie):
                    pass
            assert refused.value.response.status_code == 403  # closed 1008 before accept
        with pytest.raises(websockets.InvalidStatus):
            async with YClient(scene.ws(999999), scene.mediator.cookie):
                pass
        for bad, code in ((b"\x00\x07\x01", 1007), (b"\x09", 1007),
                          (b"\x00\x02" + b"\xff" * 8, 1007)):
            async with YClient(scene.ws(), scene.mediator.cookie) as client:
                await asyncio.wait_for(client.synced.wait(), 10)
                await client.send_raw(bad)
                assert client.socket is not None
                await asyncio.wait_for(client.socket.wait_closed(), 10)
                assert client.socket.close_code == code, bad
        # A foreign page cannot use the user's cookie.
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(scene.ws(), additional_headers={
                "Cookie": scene.mediator.cookie, "Origin": "https://evil.example"}):
                pass

    before = scene.text()
    asyncio.run(run())
    assert scene.text() == before


def test_killing_the_server_loses_no_edit_anyone_has_seen(tmp_path: Path) -> None:
    seen: list[str] = []
    with live_server(tmp_path) as server:
        scene = draft_scene(server)
        cookies = (scene.mediator.cookie, scene.party_a.cookie)

        async def edit_then_crash() -> None:
            async with YClient(scene.ws(), cookies[0]) as writer, \
                    YClient(scene.ws(), cookies[1]) as reader:
                await asyncio.gather(asyncio.wait_for(writer.synced.wait(), 10),
                                     asyncio.wait_for(reader.synced.wait(), 10))
                for n in range(40):
                    writer.add_paragraph(f"edit number {n}")
                    await asyncio.sleep(0)
                # What the reader has received, others have seen: it must survive.
                await reader.wait_for(lambda c: "edit number 20" in c.text())
                seen.extend(line for line in reader.text().splitlines()
                            if line.startswith("edit number"))
                server.process.kill()  # no shutdown, no flush
                server.process.wait(10)

        asyncio.run(edit_then_crash())
        draft_id, ws_path = scene.draft_id, f"/ws/drafts/{scene.draft_id}"
    assert len(seen) >= 21
    with live_server(tmp_path) as again:
        async def reload() -> str:
            url = again.url.replace("http://", "ws://") + ws_path
            async with YClient(url, cookies[1]) as client:
                await asyncio.wait_for(client.synced.wait(), 10)
                return client.text()

        text = asyncio.run(reload())
        lines = set(text.splitlines())
        assert set(seen) <= lines
        assert draft_id


def test_reconnecting_without_editing_changes_nothing(scene: DraftScene) -> None:
    async def run() -> None:
        clause = "a clause that will be removed"
        async with YClient(scene.ws(), scene.party_a.cookie) as first, \
                YClient(scene.ws(), scene.party_b.cookie) as other:
            await asyncio.wait_for(first.synced.wait(), 10)
            await asyncio.wait_for(other.synced.wait(), 10)
            first.add_paragraph(clause)
            await other.wait_for(lambda c: clause in c.text())
            del first.root.children[len(first.root.children) - 1]  # a deletion in the doc
            await other.wait_for(lambda c: clause not in c.text())  # the server has it
            state = first.doc.get_update()
        version = scene.mediator.get(f"/api/v1/drafts/{scene.draft_id}").json()["version"]
        # The same person comes back with the same document: their sync step 2 carries only
        # what the server already has.
        again = YClient(scene.ws(), scene.party_a.cookie)
        again.doc.apply_update(state)
        observer = scene.observer()
        watcher = YClient(scene.ws(), observer.cookie)
        watcher.doc.apply_update(state)
        async with again, watcher:
            await asyncio.wait_for(again.synced.wait(), 10)
            await asyncio.wait_for(watcher.synced.wait(), 10)
            # A round trip after the greeting shows everything sent so far was handled.
            probe = YClient(scene.ws(), scene.party_a.cookie)
            async with probe:
                await asyncio.wait_for(probe.synced.wait(), 10)
            assert watcher.denied == []  # nothing written, so nothing refused
        after = scene.mediator.get(f"/api/v1/drafts/{scene.draft_id}").json()["version"]
        assert after == version

    asyncio.run(run())
