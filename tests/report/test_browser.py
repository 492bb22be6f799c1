"""The HTML report in a real headless browser (Debian's chromium via playwright).

Loads the page from a file:// URL on a desktop (1280 px) and a phone (390 px) viewport: no
console errors, no failed or external requests, every section present and visible, no horizontal
overflow on the phone, the copy button works. Screenshots go to the test's tmp dir (and, when
``INITWISE_SCREENSHOT_DIR`` is set, there too).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from initwise.report import render_html
from initwise.report.profile import stats_profile
from initwise.theory_points import phase_diagram

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()),
                None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ("verdict", "summary", "findings", "curves", "layers", "data", "theory", "init")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (run scripts/ensure-browser.sh as root)")


@pytest.fixture(scope="module")
def report(fx, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    render_html(fx.diagnosis(), path, title="initwise browser test", after=fx.diagnosis(0.95),
                labels=("torch default", "initwise.init"), init_report=fx.init_report(),
                phase=phase_diagram(fx.points(1.41), fx.points()),
                curves={"loss": {"torch default": ([1, 2, 3], [4.1, 4.0, 3.9]),
                                 "initwise.init": ([1, 2, 3], [3.9, 3.0, 2.2])},
                        "accuracy": {"torch default": ([0, 3], [0.02, 0.1]),
                                     "initwise.init": ([0, 3], [0.02, 0.5])},
                        "prior": 3.9},
                summary={"header": ["", "torch default", "initwise.init"],
                         "rows": [["test accuracy", "10%", "50%"]]},
                data_stats=stats_profile(fx.FakeStats()))
    return path


@pytest.mark.parametrize("width,name", [(1280, "desktop"), (390, "narrow")])
def test_report_in_headless_chromium(report, tmp_path, width, name):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            for sid in SECTIONS:
                assert page.locator(f"section#{sid}").is_visible(), sid
            assert page.locator("svg.chart").count() >= 8
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{overflow} px of horizontal overflow at {width} px"
            page.locator("button.copy").first.click()
            page.wait_for_function(
                "document.querySelector('button.copy').textContent === 'copied'", timeout=3000)
            shot = tmp_path / f"report-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests
    target = os.environ.get("INITWISE_SCREENSHOT_DIR")
    if target:
        shutil.copy(shot, Path(target) / shot.name)
