"""action.logs(tail, follow=False) and action.logs(follow=True) while the platform
appends lines and then finishes the action; prints every raw frame received."""
import json

import dockercloud
from dockercloud_shims import emit, guarded, native, scenario

s = scenario()
result = {}

if "backlog" in s:
    action = dockercloud.Action.fetch(s["backlog"]["uuid"])
    for name, tail in s["backlog"]["tails"].items():
        frames = []
        action.logs(tail, False, frames.append)  # returns only when the server closes
        result[name] = [json.loads(f) for f in frames]

if "follow" in s:
    uuid = s["follow"]["uuid"]
    action = dockercloud.Action.fetch(uuid)
    frames = []
    steps = s["follow"]["append"]
    # Each line received triggers the next step, so nothing depends on timing: the
    # last backlog line appends the first new line, each new line the next, and the
    # last one appends a final line and finishes the action in the same breath.
    triggers = dict(zip([s["follow"]["last_backlog"]] + steps[:-1], steps))

    def on_frame(frame):
        frames.append(json.loads(frame))
        line = frames[-1]["log"]
        if line in triggers:
            native("POST", "/logbook/v1/actions/%s/logs" % uuid, {"log": triggers[line]})
        elif line == steps[-1]:
            native("POST", "/logbook/v1/actions/%s/logs" % uuid, [{"log": "last words"}])
            native("PATCH", "/logbook/v1/actions/%s" % uuid, {"state": "Success"})

    action.logs(s["follow"].get("tail", 0), True, guarded(on_frame))  # returns when the server closes
    result["follow"] = frames
    result["final_state"] = dockercloud.Action.fetch(uuid).state

emit(result)
