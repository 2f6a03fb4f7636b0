"""sync_all across pages, instances and stats with the real waldur-api-client 8.1.3.

The Rust test ingests `bulk()` of waldur.rs: record i (0-based, id i+1) has source
SOURCES[i % 3], instance pod-(i % 4), level LEVELS[(i // 2) % 4], created T + i,
message "bulk i"; then a few records outside the view (ids 231..).
"""

import os
from collections import Counter
from datetime import datetime, timezone

from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.system_logs import (
    system_logs_count,
    system_logs_instances_count,
    system_logs_instances_list,
    system_logs_list,
    system_logs_stats_count,
    system_logs_stats_retrieve,
)
from waldur_api_client.models import SystemLogOEnum as O, SystemLogSourceEnum as Source

T = 1714560000
N = 230
SOURCES = ["api", "worker", "beat"]
LEVELS = [20, 30, 40, 50]
client = AuthenticatedClient(base_url=os.environ["BASE"], token=os.environ["TOKEN"])

rows = [
    {"id": i + 1, "source": SOURCES[i % 3], "instance": f"pod-{i % 4}",
     "level_number": LEVELS[(i // 2) % 4], "ts": T + i}
    for i in range(N)
]


def check(label, got, expected):
    assert got == expected, f"{label}: got {got}, expected {expected}"


# sync_all forces page_size=100 and follows rel="next": 3 pages here.
everything = system_logs_list.sync_all(client=client)
check("sync_all ids", [r.id for r in everything], list(range(N, 0, -1)))
check("sync_all messages", everything[-1].message, "bulk 0")

# Repeated `o` travels through the links (the client re-sends it; the link only
# carries `page`, and its commas are percent-encoded so the header still parses).
wanted = sorted(
    (r for r in rows if r["level_number"] >= 30),
    key=lambda r: (r["instance"], -r["ts"]),
)
got = system_logs_list.sync_all(client=client, o=[O.INSTANCE, O.VALUE_0], level_gte=30,
                                created_from=float(T))
check("sync_all ordered and filtered", [r.id for r in got], [r["id"] for r in wanted])
assert len(wanted) > 100, "the filtered set must span pages"

first = system_logs_list.sync_detailed(client=client, page_size=100)
check("page 1 length", len(first.parsed), 100)
check("page 1 count header", first.headers["x-result-count"], str(N))
assert 'page=2>; rel="next"' in first.headers["link"], first.headers["link"]
last = system_logs_list.sync_detailed(client=client, page_size=100, page=3)
check("page 3 length", len(last.parsed), 30)
assert 'rel="next"' not in last.headers["link"], last.headers["link"]
check("count", system_logs_count.sync(client=client), N)
check("count source", system_logs_count.sync(client=client, source=Source.BEAT),
      sum(1 for r in rows if r["source"] == "beat"))

# Instances: one row per (source, instance) with its count and last activity.
groups = Counter((r["source"], r["instance"]) for r in rows)
last_seen = {}
for r in rows:
    last_seen[(r["source"], r["instance"])] = r["ts"]
instances = system_logs_instances_list.sync(client=client, page_size=50)
check("instances keys", [(i.source, i.instance) for i in instances], sorted(groups))
for i in instances:
    check(f"count {i.source}/{i.instance}", i.count, groups[(i.source, i.instance)])
    check(f"last_seen {i.source}/{i.instance}", i.last_seen,
          datetime.fromtimestamp(last_seen[(i.source, i.instance)], tz=timezone.utc))
check("instances count", system_logs_instances_count.sync(client=client), len(groups))
check("instances sync_all", len(system_logs_instances_list.sync_all(client=client)), len(groups))

by_recent = system_logs_instances_list.sync(client=client, o=[O.VALUE_0], page_size=3)
check("instances o=-created", [i.last_seen.timestamp() for i in by_recent],
      sorted(last_seen.values(), reverse=True)[:3])
page2 = system_logs_instances_list.sync_detailed(client=client, page=2, page_size=5)
check("instances page 2", [(i.source, i.instance) for i in page2.parsed], sorted(groups)[5:10])
check("instances count header", page2.headers["x-result-count"], str(len(groups)))
assert 'page=3>; rel="next"' in page2.headers["link"], page2.headers["link"]

worker = system_logs_instances_list.sync(client=client, source=Source.WORKER, level_gte=50)
expected = Counter((r["source"], r["instance"]) for r in rows
                   if r["source"] == "worker" and r["level_number"] >= 50)
check("instances filtered", {(i.source, i.instance): i.count for i in worker}, dict(expected))
check("instances count filtered",
      system_logs_instances_count.sync(client=client, source=Source.WORKER, level_gte=50),
      len(expected))

# Stats: every instance of the view and the on-disk size of log records.
stats = system_logs_stats_retrieve.sync(client=client)
check("stats instances", {(i.source, i.instance): i.count for i in stats.instances}, dict(groups))
assert stats.total_size_bytes > 0, stats.total_size_bytes
check("stats mb", stats.total_size_mb, round(stats.total_size_bytes / 1048576, 2))
check("stats count", system_logs_stats_count.sync(client=client), len(groups))

print(f"ok {stats.total_size_bytes}")
