"""/docs in a real browser: Swagger UI, served by the service itself, renders
every path of the OpenAPI document, and the page fetches nothing from
anywhere but the service."""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from blueprints.openapi import METHODS


def test_the_docs_page_shows_every_path(service, browser):
    document = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    operations = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }

    browser.get(f"{service.url}/docs")

    def rendered(driver) -> list:
        blocks = driver.find_elements(By.CSS_SELECTOR, ".opblock")
        return blocks if len(blocks) >= len(operations) else []

    WebDriverWait(browser, 30).until(rendered, "Swagger UI did not render every operation")
    shown = {summary(block) for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")}
    assert shown == operations
    assert {path for _, path in shown} == set(document["paths"])
    assert "wx-session-service" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    # Swagger UI lists what it could not resolve or parse in an errors box.
    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")

    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert fetched and all(url.startswith(service.url + "/") for url in fetched), fetched


def summary(block: WebElement) -> tuple[str, str]:
    """(method, path) as an operation's summary line shows them."""
    method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
    path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
    return method.lower(), path or ""
