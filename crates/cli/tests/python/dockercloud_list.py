"""Action.list with the given filters (following meta.next through every page) and
Action.fetch of the given uuids; prints what the client received."""
import dockercloud
from dockercloud_shims import action_dict, api_error, emit, scenario

s = scenario()
result = {"lists": {}, "fetched": {}, "fetch_errors": {}}
for name, filters in s.get("lists", {}).items():
    result["lists"][name] = [a.uuid for a in dockercloud.Action.list(**filters)]
for uuid in s.get("fetch", []):
    action = dockercloud.Action.fetch(uuid)
    assert action.pk == action.uuid == uuid
    result["fetched"][uuid] = action_dict(action)
for uuid in s.get("fetch_missing", []):
    result["fetch_errors"][uuid] = api_error(lambda: dockercloud.Action.fetch(uuid))
emit(result)
