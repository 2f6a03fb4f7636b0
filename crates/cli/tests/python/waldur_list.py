"""system_logs_list / count / retrieve with the real waldur-api-client 8.1.3.

The Rust test ingests the dataset of waldur.rs (`dataset()`) into a fresh store, so
the ids below are fixed: 1..8 are in the view, 9..13 are not (another kind, a
source the client cannot parse, no level, an upper-case source, a journal entry).
"""

import os
from datetime import datetime, timezone

from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.system_logs import (
    system_logs_count,
    system_logs_list,
    system_logs_retrieve,
)
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.models import (
    SystemLogLevelEnum as Level,
    SystemLogOEnum as O,
    SystemLogSourceEnum as Source,
)

T = 1714560000  # 2024-05-01T10:40:00Z, the dataset's base time
client = AuthenticatedClient(base_url=os.environ["BASE"], token=os.environ["TOKEN"])


def ids(**kwargs):
    return [r.id for r in system_logs_list.sync(client=client, page_size=50, **kwargs)]


def check(label, got, expected):
    assert got == expected, f"{label}: got {got}, expected {expected}"


# Without `o`: newest first by id (arrival); 7 was written late but dated early.
check("default", ids(), [8, 7, 6, 5, 4, 3, 2, 1])
check("default page size is 10", len(system_logs_list.sync(client=client)), 8)

# Every field of one record, parsed by the client's own model.
one = system_logs_retrieve.sync(id=3, client=client)
check("id", one.id, 3)
check("created", one.created, datetime(2024, 5, 1, 10, 40, 20, tzinfo=timezone.utc))
check("source", one.source, Source.BEAT)
check("instance", one.instance, "pod-c")
check("level", one.level, "ERROR")
check("level_number", one.level_number, 40)
check("logger_name", one.logger_name, "celery.beat")
check("message", one.message, "schedule failed")
check("context", one.context.to_dict(), {"task": "cleanup", "attempt": 2})
check("empty context", system_logs_retrieve.sync(id=4, client=client).context.to_dict(), {})
check("WARNING spelling", system_logs_retrieve.sync(id=2, client=client).level, "WARNING")
check("DEBUG level", system_logs_retrieve.sync(id=5, client=client).level_number, 10)
fractional = system_logs_retrieve.sync(id=8, client=client).created
check("fractional created", fractional.timestamp(), T + 60.5)

# Filters, one at a time.
check("created_from", ids(created_from=T + 30), [8, 6, 5, 4])
check("created_from fractional", ids(created_from=T + 59.9), [8])
check("created_to", ids(created_to=T + 10), [7, 2, 1])
check("created_to float form", ids(created_to=float(T)), [1])
check("created range", ids(created_from=T + 5, created_to=T + 20.0), [7, 3, 2])
check("created_from exponent", ids(created_from=1e16), [])
check("created_to tiny", ids(created_to=0.1 + 0.2), [])
check("instance", ids(instance="pod-a"), [7, 6, 4, 1])
check("level INFO", ids(level=Level.INFO), [8, 6, 1])
check("level WARNING", ids(level=Level.WARNING), [2])
check("level CRITICAL", ids(level=Level.CRITICAL), [4])
check("level_gte 30", ids(level_gte=30), [7, 4, 3, 2])
check("level_gte 40", ids(level_gte=40), [7, 4, 3])
check("level_gte 50", ids(level_gte=50), [4])
check("level_gte 20", ids(level_gte=20), [8, 7, 6, 4, 3, 2, 1])
check("logger_name", ids(logger_name="celery.worker"), [6, 2])
check("message, case-insensitive", ids(message="EXPORT"), [6, 2])
check("message with punctuation", ids(message="failed, a&b/ü"), [7])
check("message short", ids(message="DB"), [5, 4])
check("source api", ids(source=Source.API), [7, 5, 4, 1])
check("source worker", ids(source=Source.WORKER), [6, 2])
check("source beat", ids(source=Source.BEAT), [8, 3])
check(
    "every filter at once",
    ids(created_from=T, created_to=T + 100, instance="pod-a", level=Level.ERROR,
        level_gte=30, logger_name="waldur.core", message="request", source=Source.API),
    [7],
)

# Ordering, each key both ways, and repeated keys.
check("o=created", ids(o=[O.CREATED]), [1, 7, 2, 3, 4, 5, 6, 8])
check("o=-created", ids(o=[O.VALUE_0]), [8, 6, 5, 4, 3, 2, 7, 1])
check("o=level_number", ids(o=[O.LEVEL_NUMBER]), [5, 1, 6, 8, 2, 3, 7, 4])
check("o=-level_number", ids(o=[O.VALUE_2]), [4, 7, 3, 2, 8, 6, 1, 5])
check("o=instance", ids(o=[O.INSTANCE]), [1, 4, 6, 7, 2, 5, 3, 8])
check("o=-instance", ids(o=[O.VALUE_1]), [8, 3, 5, 2, 7, 6, 4, 1])
check("o=instance,-created", ids(o=[O.INSTANCE, O.VALUE_0]), [6, 4, 7, 1, 5, 2, 8, 3])
check("o=-level_number,created", ids(o=[O.VALUE_2, O.CREATED]), [4, 7, 3, 2, 1, 6, 8, 5])
check("o=instance,level_number,-created",
      ids(o=[O.INSTANCE, O.LEVEL_NUMBER, O.VALUE_0]), [6, 1, 7, 4, 5, 2, 8, 3])

# Pages of an explicit size, with the headers the client sees.
page2 = system_logs_list.sync_detailed(client=client, page=2, page_size=3, o=[O.CREATED])
check("page 2 status", page2.status_code, 200)
check("page 2 ids", [r.id for r in page2.parsed], [3, 4, 5])
check("page 2 count header", page2.headers["x-result-count"], "8")
link = page2.headers["link"]
for rel, page in [("first", 1), ("prev", 1), ("next", 3), ("last", 3)]:
    assert f"page={page}>; rel=\"{rel}\"" in link, f"{rel} in {link}"
page3 = system_logs_list.sync_detailed(client=client, page=3, page_size=3, o=[O.CREATED])
check("page 3 ids", [r.id for r in page3.parsed], [6, 8])
assert 'rel="next"' not in page3.headers["link"], page3.headers["link"]

# Counts (HEAD): the total matching, whatever page is asked for.
check("count all", system_logs_count.sync(client=client), 8)
check("count level_gte", system_logs_count.sync(client=client, level_gte=30), 4)
check("count source", system_logs_count.sync(client=client, source=Source.WORKER), 2)
check("count ignores paging", system_logs_count.sync(client=client, page=9, page_size=1), 8)
check("count message", system_logs_count.sync(client=client, message="zzz"), 0)

# Records outside the view and unknown ids are all simply not found.
for missing in [9, 10, 11, 12, 13, 999]:
    try:
        system_logs_retrieve.sync(id=missing, client=client)
        raise AssertionError(f"record {missing} should not be visible")
    except UnexpectedStatus as e:
        check(f"retrieve {missing}", (e.status_code, e.content), (404, b'{"detail":"Not found."}'))

print("ok")
