"""Loads python-dockercloud 1.0.12 under Python 3 against a Logbook node.

The library was written for Python 2. Two of its leftovers are patched here, and
nothing that goes over the wire: `urljoin` gets the str it expects instead of the
bytes path (every REST call fails otherwise), and `Events.run_forever` may run off
the main thread (it installs a SIGINT handler). Credentials travel as
DOCKERCLOUD_AUTH ("Basic <base64 of user:apikey>"), set by the test before import.
"""
import json
import os
import signal as _signal
import sys
import types as _types
import urllib.parse as _urlparse

import dockercloud
import dockercloud.api.events as _dc_events
import dockercloud.api.http as _dc_http

BASE = os.environ["LOGBOOK_URL"]


def _urljoin_py3(base, url, allow_fragments=True):
    if isinstance(url, (bytes, bytearray)):
        url = bytes(url).decode("ascii")
    if isinstance(base, (bytes, bytearray)):
        base = bytes(base).decode("ascii")
    return _urlparse.urljoin(base, url, allow_fragments)


_dc_http.urljoin = _urljoin_py3
_dc_events.signal = _types.SimpleNamespace(signal=lambda *a, **k: None, SIGINT=_signal.SIGINT)
assert dockercloud.rest_host.rstrip("/") == BASE, dockercloud.rest_host
assert dockercloud.dockercloud_auth, "DOCKERCLOUD_AUTH must be set"


# A script that hangs (a stream that never ends) fails the test instead of blocking
# it: SIGALRM's default action ends the process with a non-zero status.
_signal.alarm(120)


class StopStream(BaseException):
    """Raised from a handler to leave a stream (Exception subclasses are swallowed)."""


def guarded(handler):
    """Wraps a stream callback so that a failure inside it ends the stream and the
    script, instead of being swallowed by websocket-client while the stream waits."""

    def call(*args):
        try:
            return handler(*args)
        except Exception as e:  # noqa: BLE001 - re-raised outside the stream
            raise StopStream(repr(e)) from e

    return call


def scenario():
    return json.loads(os.environ.get("SCENARIO", "{}"))


def native(method, path, body=None):
    """Drives the platform side through the native API, as the platform would."""
    import requests

    response = requests.request(
        method,
        BASE + path,
        json=body,
        headers={"Authorization": "Bearer " + os.environ["PLATFORM_TOKEN"]},
        timeout=30,
    )
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json()


def action_dict(action):
    """The attributes the server sent, as loaded onto the client's object."""
    keys = ["resource_uri", "uuid", "object", "action", "method", "path", "user",
            "user_agent", "start_date", "end_date", "state", "ip", "location",
            "is_user_action", "can_be_canceled", "can_be_retried", "retry_of",
            "dockercloud_action_uri"]
    return {k: getattr(action, k) for k in keys if hasattr(action, k)}


def api_error(call):
    """The message of the ApiError a call raises (None if it succeeds)."""
    try:
        call()
    except dockercloud.ApiError as e:
        return {"error": type(e).__name__, "message": str(e)}
    return None


def emit(result):
    sys.stdout.write(json.dumps(result) + "\n")
