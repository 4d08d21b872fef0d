"""Metrics and logs of the deployed shape: gunicorn with two workers. Every
worker counts into the multiprocess directory the master prepared, so a
scrape answered by either worker adds up both; a worker that dies keeps its
counts in the totals. With LOG_FORMAT=json every line gunicorn writes, its
access log included, is one JSON object carrying the request id."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dev.waiting import wait_until
from support.metrics import METRICS_TOKEN, SCRAPE, samples, value
from support.servers import Server

# Counting and scheduling across processes: the database plays no part.
pytestmark = [pytest.mark.gunicorn, pytest.mark.sqlite_only]

BANNER = re.compile(r"^\[[^]]+\] \[\d+\] \[INFO\] Starting gunicorn [\d.]+$")
HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's PROMETHEUS_MULTIPROC_DIR, with a previous run's file
    the master must remove before the workers start."""
    path = tmp_path_factory.mktemp("prometheus")
    (path / "counter_99999.db").write_bytes(b"stale counts of a previous start")
    return path


@pytest.fixture(scope="module")
def metered(launch, metrics_dir) -> Iterator[Server]:
    with launch(METRICS_TOKEN=METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as server:
        yield server


@pytest.fixture(scope="module")
def json_logged(launch) -> Iterator[Server]:
    """Another instance, logging JSON, with the directory the service makes itself."""
    with launch(METRICS_TOKEN=METRICS_TOKEN, LOG_FORMAT="json") as server:
        yield server


def scrape(server: Server) -> tuple[dict, int]:
    """The numbers, and the worker that answered."""
    response, pid = server.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    return samples(response.text), pid


def scrape_on_both(server: Server) -> dict[int, dict]:
    """Scrapes until each worker has answered one: {pid: its scrape}."""
    answers: dict[int, dict] = {}
    for _ in range(100):
        found, pid = scrape(server)
        answers[pid] = found
        if len(answers) == 2:
            return answers
    pytest.fail("every scrape landed on the same worker")


def healthz(server: Server, count: int) -> set[int]:
    pids = set()
    for _ in range(count):
        response, pid = server.get("/healthz")
        assert response.status_code == 200
        pids.add(pid)
    return pids


def test_counts_add_up_across_both_workers(metered, metrics_dir, wechat, watch):
    assert not (metrics_dir / "counter_99999.db").exists()  # emptied at start
    before = scrape(metered)[0]
    n = 60
    served_by = healthz(metered, n)
    assert len(served_by) == 2, "both workers must have served /healthz"
    for _ in range(4):
        response, _ = metered.call("POST", "/oauth/login", json={"code": wechat.login()["code"]})
        watch.add_text(str(response.headers) + response.text)
        assert response.status_code == 200
    for pid, after in scrape_on_both(metered).items():
        assert (
            value(after, "wx_http_requests_total", **HEALTHZ)
            - value(before, "wx_http_requests_total", **HEALTHZ)
            == n
        ), f"worker {pid}"
        assert (
            value(after, "wx_logins_total", outcome="new")
            - value(before, "wx_logins_total", outcome="new")
            == 4
        )
        assert (
            value(after, "wx_wechat_calls_total", api="jscode2session", errcode="0")
            - value(before, "wx_wechat_calls_total", api="jscode2session", errcode="0")
            == 4
        )
    # One file per worker and kind of metric, in the operator's directory.
    assert {path.name for path in metrics_dir.glob("counter_*.db")} >= {
        f"counter_{pid}.db" for pid in served_by
    }


def test_a_dead_workers_counts_stay_in_the_totals(metered):
    before = scrape(metered)[0]
    served_by = healthz(metered, 20)
    victim = next(iter(served_by))
    os.kill(victim, signal.SIGKILL)
    log_before = metered.log_text().count("Booting worker")
    wait_until(
        lambda: metered.log_text().count("Booting worker") > log_before,
        timeout=30,
        what="gunicorn to replace the killed worker",
    )
    for after in scrape_on_both(metered).values():
        assert (
            value(after, "wx_http_requests_total", **HEALTHZ)
            - value(before, "wx_http_requests_total", **HEALTHZ)
            == 20
        )


def test_json_logs_under_gunicorn(json_logged, wechat, watch):
    response = requests.post(
        f"{json_logged.url}/oauth/login", json={"code": wechat.login()["code"]}, timeout=30
    )
    watch.add_text(str(response.headers) + response.text)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]

    def lines() -> list[dict]:
        text = json_logged.log_text()
        # gunicorn writes its banner before any hook can change its format.
        return [
            json.loads(line)
            for line in text.splitlines()
            if line.strip() and not BANNER.search(line)
        ]

    def access_line() -> dict | None:
        return next(
            (
                line
                for line in lines()
                if line["logger"] == "gunicorn.access" and line.get("request_id") == request_id
            ),
            None,
        )

    access = wait_until(access_line, timeout=10, what="the JSON access log line")
    assert (access["method"], access["status"]) == ("POST", 200)
    assert isinstance(access["duration_ms"], int) and isinstance(access["pid"], int)
    every = lines()  # every other line gunicorn wrote parses as JSON
    assert len(BANNER.findall(json_logged.log_text())) <= 1
    assert any(line["logger"] == "gunicorn.error" for line in every)
    ours = [line for line in every if line.get("request_id") == request_id]
    assert {line["logger"] for line in ours} >= {
        "gunicorn.access",
        "wx.request",
        "services.usecases.login",
    }
    assert len({line["pid"] for line in ours}) == 1
    watch.add_text(json_logged.log_text())
    # A scrape of this instance adds up both workers too (its own directory).
    scraped = requests.get(f"{json_logged.url}/metrics", headers=SCRAPE, timeout=30)
    assert value(samples(scraped.text), "wx_logins_total", outcome="new") >= 1
