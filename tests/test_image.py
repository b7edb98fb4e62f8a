"""The image ships every page's scripts (``Dockerfile``).

Docker itself may not run on the test machines, so this builds the bundles with the very command
the image's Node stage runs, from only what that stage copies, into an empty folder, and checks
that every script and stylesheet a page loads is there or comes with the source.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def node_stage() -> str:
    """The Dockerfile's stage that builds the bundles (``FROM ... AS bundles``)."""
    match = re.search(r"^FROM \S+ AS bundles\n(.*?)(?=^FROM )", DOCKERFILE, re.M | re.S)
    assert match, "the Dockerfile has no 'bundles' stage"
    return match.group(1)


def page_assets() -> set[str]:
    """Every /static/... file the templates load."""
    found: set[str] = set()
    for template in (FRONTEND / "templates").rglob("*.html"):
        found |= set(re.findall(r"""(?:src|href)=["']/static/([^"'?#]+)""", template.read_text()))
    return found


def test_the_pages_load_bundles_and_a_stylesheet() -> None:
    # Guards the test itself: a template change that hid the references would make it vacuous.
    assert {"app.js", "editor.js", "room.js", "app.css"} <= page_assets()


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_the_image_build_produces_every_script_a_page_loads(tmp_path: Path) -> None:
    if not (FRONTEND / "node_modules" / ".bin" / "esbuild").exists():
        pytest.skip("frontend packages not installed (make frontend)")
    stage = node_stage()
    # Only what the stage copies takes part: a source file it forgot would fail the build.
    work = tmp_path / "frontend"
    work.mkdir()
    for source, _dest in re.findall(r"^COPY (\S+(?: \S+)*) (\S+)$", stage, re.M):
        for name in source.split():
            path = ROOT / name
            target = work / path.name
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                shutil.copy(path, target)
    (work / "node_modules").symlink_to(FRONTEND / "node_modules")  # what `npm ci` installs
    builds = re.findall(r"^RUN (npm run build.*)$", stage, re.M)
    assert len(builds) == 1, "the bundles stage must run `npm run build` once"
    command = shlex.split(builds[0])
    outdir = command[command.index("--outdir") + 1]
    copied = re.search(rf"^COPY --from=bundles {re.escape(outdir)}/? (\S+)$", DOCKERFILE, re.M)
    assert copied and copied.group(1).rstrip("/") == "frontend/static", (
        "the runtime stage must take the bundles into frontend/static")
    out = tmp_path / "static"
    command[command.index("--outdir") + 1] = str(out)
    subprocess.run(command, cwd=work, check=True, capture_output=True, timeout=120)

    shipped = {p.name for p in out.iterdir()} | {
        p.name for p in (FRONTEND / "static").iterdir()
        if not (FRONTEND / "src" / p.name).exists()}  # committed assets (CSS), not bundles
    missing = page_assets() - shipped
    assert not missing, f"the image would lack {sorted(missing)}"
    for bundle in out.glob("*.js"):
        assert bundle.stat().st_size > 300, f"{bundle.name} is nearly empty"


def test_the_build_context_keeps_what_the_image_builds_from() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("frontend/src", "frontend/build.mjs", "frontend/package.json",
                   "frontend/package-lock.json", "frontend/templates", "frontend/static/app.css"):
        assert needed not in ignored and not any(
            Path(needed).match(pattern) for pattern in ignored if "*" in pattern), needed
