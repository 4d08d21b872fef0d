"""Every endpoint, with and without a session, against bodies of every shape
and every way of framing them. The property is `Fuzz.exchange`'s: no 5xx but
a documented outage, every answer JSON in the documented shape, an honest
Connection header, the service up after every case, no traceback logged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.fuzzing import (
    ENDPOINTS,
    Endpoint,
    Plan,
    examples,
    framings,
    json_bodies,
    odd_requests,
    other_bodies,
    oversized_bodies,
    plain_framings,
    requests,
)

pytestmark = [pytest.mark.gunicorn, pytest.mark.sqlite_only]

by_endpoint = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)


@by_endpoint
def test_json_bodies(fuzz, endpoint: Endpoint) -> None:
    @examples(150)
    @given(requests(endpoint, json_bodies(endpoint)))
    def run(plan: Plan) -> None:
        fuzz.exchange(plan, endpoint)

    run()


@by_endpoint
def test_form_multipart_text_and_bytes(fuzz, endpoint: Endpoint) -> None:
    @examples(100)
    @given(requests(endpoint, other_bodies(endpoint)))
    def run(plan: Plan) -> None:
        fuzz.exchange(plan, endpoint)

    run()


@by_endpoint
def test_framing(fuzz, endpoint: Endpoint) -> None:
    """Content-Length short, long, negative, not a number, twice; chunked with
    extensions, trailers, bad sizes, no last chunk; chunked with a length;
    other transfer codings; bodies over the limit."""
    bodies = json_bodies(endpoint) | other_bodies(endpoint) | oversized_bodies(endpoint)

    @examples(150)
    @given(requests(endpoint, bodies, framing=framings))
    def run(plan: Plan) -> None:
        fuzz.exchange(plan, endpoint)

    run()


@by_endpoint
def test_headers_and_targets(fuzz, endpoint: Endpoint) -> None:
    """Odd Authorization and Cookie headers, Expect, Connection, Upgrade,
    forwarding headers, query strings and request targets."""

    @examples(60)
    @given(requests(endpoint, json_bodies(endpoint), headers=True))
    def run(plan: Plan) -> None:
        fuzz.exchange(plan, endpoint)

    run()


def test_unknown_paths_methods_and_versions(fuzz) -> None:
    @examples(300)
    @given(odd_requests())
    def run(plan: Plan) -> None:
        fuzz.exchange(plan)

    run()


def test_oversized_bodies_are_refused(fuzz) -> None:
    """Over 64 KB, with a Content-Length or chunked, every endpoint that reads
    a body answers 413 (or 401 before it reads it)."""
    readers = [e for e in ENDPOINTS if e.reads_body]

    @examples(40)
    @given(
        st.sampled_from(readers).flatmap(
            lambda e: st.tuples(
                st.just(e), requests(e, oversized_bodies(e), framing=plain_framings)
            )
        )
    )
    def run(case: tuple[Endpoint, Plan]) -> None:
        endpoint, plan = case
        fuzz.exchange(plan, endpoint)

    run()
