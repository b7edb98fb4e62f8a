"""The serving process keeps its start-up heap out of garbage collections, which otherwise
paused the event loop for up to 170 ms under load (see ``odr.app.freeze_startup_heap``)."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from odr.app import create_app
from tests.databases import sqlite_only
from tests.harness import copy_database, make_settings

pytestmark = sqlite_only


def test_serving_app_collects_only_what_came_after_start_up(
        tmp_path: Path, template_db: Path) -> None:
    copy_database(template_db, tmp_path / "odr.sqlite3")
    app = create_app(make_settings(tmp_path), migrate_on_start=False, serving=True)
    assert gc.get_freeze_count() == 0
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            frozen = gc.get_freeze_count()
            # Modules, routes, templates and the PDF and crypto libraries: a large heap...
            assert frozen > 100_000
            # ...that a full collection no longer walks.
            assert len(gc.get_objects()) < frozen // 10
    finally:
        gc.unfreeze()  # this test process builds many more apps


def test_an_app_built_by_a_test_freezes_nothing(tmp_path: Path, template_db: Path) -> None:
    copy_database(template_db, tmp_path / "odr.sqlite3")
    with TestClient(create_app(make_settings(tmp_path), migrate_on_start=False)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0
