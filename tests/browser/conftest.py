"""Fixtures of the browser tier: the service under gunicorn, and a real
headless Chromium driven by selenium. The tier skips, saying why, on a
machine without Debian's chromium and chromium-driver (`make browser`
installs them)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService

from support.servers import Server

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = [
    name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not MISSING:
        return
    reason = (
        f"{' and '.join(MISSING)} not installed: run `make browser` (chromium, chromium-driver)"
    )
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def service(launch) -> Iterator[Server]:
    with launch(workers=1, logins=False) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    # The paths are given, so selenium never looks for (or downloads) a browser.
    driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER or ""))
    yield driver
    driver.quit()
