"""Chromium on the open statistics page at a phone's size: the charts draw one bar per group,
each chart's table says what its bars say, the big table matches them, and the CSV it offers
downloads and holds the same figures."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from odr.services import Services
from odr.settings import Settings
from tests import generated
from tests.browser import ARGS, CHROMIUM, needs_chromium
from tests.harness import sqlite_url
from tests.live import LiveServer, live_server, query

pytestmark = needs_chromium
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("statistics")) as s:
        requester, mediator = (row[0] for row in query(
            s, "SELECT id FROM \"user\" WHERE role IN ('party', 'mediator') ORDER BY role, id "
            "LIMIT 2"))
        url = s.database_url or sqlite_url(s.data_dir / "odr.sqlite3")

        async def fill() -> None:
            svc = Services.create(Settings(database_url=url, secret_key="x" * 40,
                                           data_dir=s.data_dir))
            try:
                async with svc.maker() as session:
                    await generated.insert(session, cases=600, now=NOW,
                                           requester_id=requester, mediators={mediator: None})
            finally:
                await svc.close()

        asyncio.run(fill())
        yield s


def test_the_charts_draw_and_match_their_tables_and_the_csv(server: LiveServer,
                                                            tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844},
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(server.url + "/")
        page.click("a[href='/open-statistics']")
        page.select_option("#f-by", "category")
        page.fill("#f-start", "2024-12-01")
        page.fill("#f-end", "2026-11-30")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/open-statistics?by=category*")
        expect(page.locator("h1")).to_have_text("Открытая статистика медиации")

        groups = page.locator("#statistics-table tbody tr")
        expect(groups).to_have_count(7)  # the seven categories
        names = [n.strip() for n in groups.locator("th").all_inner_texts()]
        big = dict(zip(names, [row.locator("td").all_inner_texts() for row in groups.all()],
                       strict=True))
        columns = page.locator("#statistics-table thead th[data-column]").evaluate_all(
            "cells => cells.map(c => c.dataset.column)")
        for chart_id in ("requested", "agreement_rate", "days_to_first_session",
                         "days_to_close"):
            chart = page.locator(f"#chart-{chart_id}")
            expect(chart.locator("svg")).to_be_visible()
            bars = chart.locator("g.bar")
            expect(bars).to_have_count(7)
            drawn = bars.evaluate_all("""gs => gs.map(g => ({
                label: g.dataset.label, value: g.dataset.value,
                width: g.querySelector('rect') ? g.querySelector('rect').getBBox().width : 0}))""")
            table = dict(zip(
                [t.strip() for t in chart.locator("tbody th").all_inner_texts()],
                [t.strip() for t in chart.locator("tbody td").all_inner_texts()], strict=True))
            column = columns.index(chart_id)
            for bar in drawn:
                assert table[bar["label"]] == bar["value"] == big[bar["label"]][column].strip()
                if bar["value"] not in ("[c]", "—"):
                    assert bar["width"] > 0, bar  # drawn, and longest for the largest value
            widest = max(drawn, key=lambda b: b["width"])
            shown = [float(b["value"]) for b in drawn if b["value"] not in ("[c]", "—")]
            assert float(widest["value"]) == max(shown)
        # Nothing wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        with page.expect_download() as download_info:
            page.click("#csv-link")
        path = tmp_path / "statistics.csv"
        download_info.value.save_as(path)
        lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
        assert lines[0][0] == "Категория"
        sheet = {line[0]: line[1:] for line in lines[1:8]}
        assert set(sheet) == set(big)
        for name, cells in big.items():
            assert [c.strip() for c in cells] == sheet[name], name
        browser.close()
