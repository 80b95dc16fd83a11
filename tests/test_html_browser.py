"""reports/index.html in a real browser: Debian's headless Chromium, driven by selenium.

The page, generated from the committed results/, is opened from file://. The test fails on
any console error or any request other than file: and data:, sorts a table by clicking its
header, filters one by typing, and saves a screenshot (to tmp_path; also to the path in
CNN_BENCH_SCREENSHOT when set, e.g. ``CNN_BENCH_SCREENSHOT=reports/index.png``). Where
Chromium or selenium is missing it skips, except in CI (CI=true), where it fails: .ci/run
installs the browser.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO, STORE

from bench.report.html import write_page
from bench.report.records import read_records

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1600,1000", "--hide-scrollbars")  # fmt: skip


def _unavailable(why: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}: CI must run the browser test (.ci/run installs chromium)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    results = STORE
    return write_page(read_records(results), tmp_path_factory.mktemp("reports"))


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        _unavailable("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _requests(driver) -> list[str]:
    """Every request since the last call, but those of the browser's own chrome:// pages
    (the new-tab page the driver opens first)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            if not params.get("documentURL", "").startswith("chrome://"):
                urls.append(params["request"]["url"])
    return urls


def _column(driver, table: str, header: str) -> list[str]:
    """The sort keys (or texts) of a column's visible cells, top to bottom."""
    return driver.execute_script(
        """const t = document.getElementById(arguments[0] + '-table');
        const col = [...t.tHead.rows[0].cells].findIndex(h => h.textContent === arguments[1]);
        return [...t.tBodies[0].rows].filter(r => !r.hidden).map(r => {
            const c = r.cells[col];
            return c.hasAttribute('data-sort') ? c.getAttribute('data-sort') : c.textContent;
        });""",
        table,
        header,
    )


def _numbers(keys: list[str]) -> list[float]:
    return [float(k) for k in keys if k not in ("", "-")]


def _sort_and_check(driver, by) -> None:
    header = driver.find_element(by.XPATH, "//table[@id='throughput-table']//th[.='Samples/s']")
    header.click()
    up = _column(driver, "throughput", "Samples/s")
    assert header.get_attribute("aria-sort") == "ascending"
    assert _numbers(up) == sorted(_numbers(up))
    assert len(_numbers(up)) > 10
    assert all(k in ("", "-") for k in up[len(_numbers(up)) :])  # missing values last
    header.click()
    down = _numbers(_column(driver, "throughput", "Samples/s"))
    assert down == sorted(down, reverse=True)
    driver.find_element(by.XPATH, "//table[@id='chapter-table']//th[.='Model']").click()
    models = _column(driver, "chapter", "Model")
    assert models == sorted(models, key=str.lower)


def _filter_and_check(driver, by) -> None:
    box = driver.find_element(by.CSS_SELECTOR, "[data-table='throughput'] input.filter")
    total = len(_column(driver, "throughput", "Model"))
    box.send_keys("resnet50 cuda")
    models = _column(driver, "throughput", "Model")
    devices = _column(driver, "throughput", "Device")
    assert 0 < len(models) < total
    assert set(models) <= {"resnet50", "resnet50_transfer"}
    assert all(d.startswith("cuda") for d in devices)
    count = driver.find_element(by.CSS_SELECTOR, "[data-table='throughput'] .count").text
    assert count == f"{len(models)} of {total} rows"
    box.clear()
    box.send_keys(" ")  # an input event with no words: every row again
    assert len(_column(driver, "throughput", "Model")) == total


def test_page_in_a_real_browser(page, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _requests(browser)  # drain the log: what came before is the browser's start
    browser.get(page.as_uri())
    assert browser.title.startswith("cnn-bench")
    _sort_and_check(browser, By)
    _filter_and_check(browser, By)
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "index.png"
    assert browser.save_screenshot(str(shot))
    if os.environ.get("CNN_BENCH_SCREENSHOT"):
        shutil.copyfile(shot, REPO / os.environ["CNN_BENCH_SCREENSHOT"])
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"console errors: {errors}"
    requests = _requests(browser)
    assert page.as_uri() in requests  # the log works: it saw the page itself
    outside = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert outside == [], f"network requests: {outside}"
