"""action.cancel() and action.retry(), allowed and refused; prints the results."""
import dockercloud
from dockercloud_shims import action_dict, api_error, emit, scenario

s = scenario()
result = {"canceled": {}, "retried": {}, "refused": {}}
for uuid in s.get("cancel", []):
    action = dockercloud.Action.fetch(uuid)
    assert action.cancel() is True
    result["canceled"][uuid] = action_dict(action)
for uuid in s.get("retry", []):
    action = dockercloud.Action.fetch(uuid)
    assert action.retry() is True
    result["retried"][uuid] = action_dict(action)
for verb, uuids in s.get("refuse", {}).items():
    for uuid in uuids:
        action = dockercloud.Action.fetch(uuid)
        result["refused"]["%s %s" % (verb, uuid)] = api_error(getattr(action, verb))
emit(result)
