"""python-logging-loki 0.3.1 (JSON push, API v1) as a writer with HTTP Basic."""

import json
import logging
import os

import logging_loki

handler = logging_loki.LokiHandler(
    url=os.environ["BASE"] + "/loki/api/v1/push",
    tags={"job": "billing", "env": "prod"},
    auth=(os.environ["USER"], os.environ["TOKEN"]),
    version="1",
)
failures = []
handler.handleError = lambda record: failures.append(record.getMessage())
logger = logging.getLogger("billing.invoices")
logger.propagate = False
logger.addHandler(handler)
logger.setLevel(logging.DEBUG)
logger.warning("disk almost full", extra={"tags": {"host": "db-1"}})
logger.error("disk full")
print(json.dumps({"failures": failures}))
