"""An error message may quote the client's text, and JSON from a client can
hold a lone surrogate (a \\ud800 escape), which UTF-8 cannot encode: the
error is still a JSON answer (found by tests/fuzz on a branch whose login
error quotes the login type)."""

from __future__ import annotations

import json

from services import errors


def test_an_error_quoting_a_lone_surrogate_is_still_json(app):
    def quote_the_client():
        raise errors.UnsupportedLoginType('Unknown login type "\ud800x".')

    app.add_url_rule("/quote", view_func=quote_the_client)
    response = app.test_client().get("/quote")
    assert response.status_code == 400
    body = json.loads(response.get_data())  # valid UTF-8, valid JSON
    assert body["error"] == "unsupported_login_type"
    assert body["message"] == 'Unknown login type "\ud800x".'
