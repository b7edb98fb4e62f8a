"""Debian's Chromium for the browser tests: where it is, how to start it here, when to skip."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root, without a screen, on a closed network (see RECIPES.md): no sandbox, no background
# connections to hosts that cannot be reached.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Camera and microphone without devices.
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

# axe-core (installed by `make frontend` as a development package of the bundle).
AXE = Path(__file__).resolve().parent.parent / "frontend" / "node_modules" / "axe-core" / \
    "axe.min.js"
needs_axe = pytest.mark.skipif(not AXE.exists(), reason="axe-core is installed by make frontend")


def serious_violations(page: Any, where: str) -> list[str]:
    """What axe-core finds serious or critical on the page as it stands. The page's context
    must be made with ``bypass_csp=True``: our policy refuses axe's inline script."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{where}: {v['id']} ({v['impact']}) {v['help']} at "
            f"{[n['target'] for n in v['nodes'][:3]]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
