"""helpers.bulk with the official elasticsearch client (9.x) against /es.

Writes four actions: two documents, a delete and a document with a bad date. Prints
what the client reports as JSON; the Rust test checks it and what was stored.
"""

import json
import os

from elasticsearch import Elasticsearch, helpers

es = Elasticsearch(os.environ["BASE"] + "/es", api_key=os.environ["TOKEN"])
info = es.info()
assert info["version"]["number"].startswith("8."), info

actions = [
    {
        "_index": "app-logs",
        "_id": "a1",
        "_source": {
            "@timestamp": "2024-05-01T10:40:00.250Z",
            "message": "payment accepted",
            "log": {"level": "warn", "logger": "app.payments"},
            "service": {"name": "checkout"},
            "host": {"name": "node-1"},
            "user": {"id": "42"},
        },
    },
    {
        "_op_type": "create",
        "_index": "app-logs",
        "_source": {
            "@timestamp": 1714560001000,
            "message": "audit trail",
            "log.level": "error",
            "category": "audit",
        },
    },
    {"_op_type": "delete", "_index": "app-logs", "_id": "a1"},
    {"_index": "app-logs", "_source": {"@timestamp": "not a date", "message": "bad"}},
]
ok, errors = helpers.bulk(es, actions, raise_on_error=False)
print(json.dumps({"ok": ok, "errors": errors}))
