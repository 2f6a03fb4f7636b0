"""dockercloud.Events: once the socket is open the platform finishes an action; the
handler keeps the first action message and stops. Also: a bad credential raises
AuthError instead of reconnecting forever."""
import json

import dockercloud
from dockercloud_shims import emit, guarded, native, scenario

s = scenario()
received = []
events = dockercloud.Events()


def on_open():
    native("PATCH", "/logbook/v1/actions/%s" % s["uuid"], {"state": s["state"]})


def on_message(message):
    event = json.loads(message)
    received.append(event)
    if event.get("type") == "action" and event.get("uuid") == s["uuid"]:
        events._on_stop(None, None)


events.on_open(guarded(on_open))
events.on_message(guarded(on_message))
events.run_forever()

dockercloud.dockercloud_auth = "Basic " + s["bad_auth"]
auth_error = None
try:
    dockercloud.Events().run_forever()
except dockercloud.AuthError as e:
    auth_error = str(e)
emit({"received": received, "auth_error": auth_error})
