"""Steady HTTP traffic against running instances while something breaks
underneath them, and what the clients saw: every answer's status, slug and
time, so a test can say how long the trouble lasted and that none of it was
a 500."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

# (session, index) -> the answer; index counts the load's requests from 0.
Request = Callable[[requests.Session, int], requests.Response]


@dataclass
class Answer:
    at: float  # time.monotonic() when it arrived
    took: float
    status: int  # 0: no answer at all (connection refused, timeout)
    slug: str
    retry_after: str | None
    text: str


@dataclass
class LoadReport:
    answers: list[Answer] = field(default_factory=list)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(answer.status for answer in self.answers)

    @property
    def failures(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status != 200]

    @property
    def failure_window(self) -> float:
        """First failure to last failure, seconds (0 when none)."""
        failed = self.failures
        return failed[-1].at - failed[0].at if failed else 0.0

    @property
    def slowest(self) -> float:
        return max((answer.took for answer in self.answers), default=0.0)

    def successes_since(self, moment: float) -> int:
        return sum(1 for a in self.answers if a.status == 200 and a.at > moment)

    def summary(self) -> str:
        slugs = Counter(answer.slug for answer in self.failures)
        return (
            f"{len(self.answers)} requests, statuses {dict(self.statuses)}, "
            f"failures {dict(slugs)} over {self.failure_window:.2f} s, "
            f"slowest {self.slowest:.2f} s"
        )


class HttpLoad:
    """`threads` loops calling `request` until the block ends."""

    def __init__(self, request: Request, threads: int = 4, timeout: float = 10.0) -> None:
        self.request = request
        self.threads = threads
        self.timeout = timeout
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._count = 0
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> HttpLoad:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)
        self.report.answers.sort(key=lambda answer: answer.at)

    def _next(self) -> int:
        with self._lock:
            self._count += 1
            return self._count - 1

    def _run(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                self._record(self._one(http))
                time.sleep(0.005)

    def _one(self, http: requests.Session) -> Answer:
        started = time.monotonic()
        try:
            response = self.request(http, self._next())
        except requests.RequestException as error:
            took = time.monotonic() - started
            return Answer(time.monotonic(), took, 0, type(error).__name__, None, "")
        slug = ""
        if response.status_code != 200:
            try:
                slug = response.json().get("error", "")
            except ValueError:
                slug = "not-json"
        return Answer(
            time.monotonic(),
            time.monotonic() - started,
            response.status_code,
            slug,
            response.headers.get("Retry-After"),
            response.text,
        )

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.report.answers.append(answer)
