"""/docs in a real browser: Swagger UI, served by the service itself, renders
every path of the OpenAPI document, and the page fetches nothing from
anywhere but the service."""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By
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
    paths = {
        element.get_attribute("data-path")
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert paths == set(document["paths"])
    shown = {
        (block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower(), path)
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
        for path in [
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
        ]
    }
    assert shown == operations
    assert "wx-session-service" in browser.find_element(By.CSS_SELECTOR, ".info .title").text

    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert fetched and all(url.startswith(service.url + "/") for url in fetched), fetched
