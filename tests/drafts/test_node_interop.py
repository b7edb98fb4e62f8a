"""The standard Yjs client (npm ``yjs`` + ``y-websocket`` in Node) edits a draft on a real server,
and the Python side reads its text; an observer's edit through the same client goes nowhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.drafts.scenario import DraftScene, Person, draft_scene
from tests.live import live_server

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("node_client.mjs")
NODE = shutil.which("node")
PACKAGES = ROOT / "frontend" / "node_modules"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="Node.js (`node`) is not installed"),
    pytest.mark.skipif(
        not all((PACKAGES / p / "package.json").exists() for p in ("yjs", "y-websocket", "ws")),
        reason="frontend packages missing: run `make frontend` (npm ci in frontend/)",
    ),
]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DraftScene]:
    with live_server(tmp_path_factory.mktemp("node-interop")) as server:
        yield draft_scene(server)


def run_node(scene: DraftScene, person: Person, text: str, *, timeout_ms: int = 10_000
             ) -> tuple[int, dict[str, Any]]:
    """Run the Node client as ``person``; its exit code and the JSON line it printed."""
    assert NODE is not None
    ws_base = scene.server.url.replace("http://", "ws://") + "/ws/drafts"
    env = os.environ | {
        "ODR_COOKIE": person.cookie, "ODR_ORIGIN": scene.server.url,
        "ODR_TIMEOUT_MS": str(timeout_ms),
    }
    done = subprocess.run(
        [NODE, str(CLIENT), ws_base, str(scene.draft_id), text],
        env=env, capture_output=True, text=True, timeout=timeout_ms / 1000 + 20,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the Node client:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, result


def test_node_yjs_client_edits_and_the_server_reads_it(scene: DraftScene) -> None:
    before = scene.text()
    assert before.strip(), "the template should give the draft a starting text"
    text = "Пункт из Node: стороны договорились о графике платежей."

    code, result = run_node(scene, scene.party_a, text)

    assert code == 0 and result["ok"], result
    # A second, fresh provider got the paragraph from the server (not from the first one).
    assert text in result["paragraphs_seen_by_second_client"]
    assert result["blocks_after"] == result["blocks_before"] + 1
    # The server's own reading of the Yjs document (pycrdt) has it, after the template text.
    after = scene.text()
    assert text in after.splitlines()
    assert after.startswith(before.rstrip("\n"))
    draft = scene.party_b.get(f"/api/v1/drafts/{scene.draft_id}").json()
    assert f"<p>{text}</p>" in draft["html"]


def test_an_observer_writing_through_the_node_client_changes_nothing(scene: DraftScene) -> None:
    observer = scene.observer()
    before = scene.text()
    text = "An observer tries to add this."

    code, result = run_node(scene, observer, text, timeout_ms=3000)

    # The observer connects and reads, but the server never passes the paragraph on.
    assert code == 1 and result["error"] == "timeout", result
    assert result["writer_synced"] is True
    assert scene.text() == before
