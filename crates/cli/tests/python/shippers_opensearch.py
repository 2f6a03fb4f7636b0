"""helpers.bulk with opensearch-py against /es, as a writer with HTTP Basic."""

import json
import os

from opensearchpy import OpenSearch, helpers

client = OpenSearch(
    hosts=[os.environ["BASE"] + "/es"],
    http_auth=(os.environ["USER"], os.environ["TOKEN"]),
)
docs = [
    {"_index": "os-index", "_source": {"message": f"line {i}", "host": {"name": "os-host"}}}
    for i in range(250)
]
ok, errors = helpers.bulk(client, docs, chunk_size=100)
print(json.dumps({"ok": ok, "errors": errors}))
