"""The OpenTelemetry Python SDK's logging handler with the OTLP/HTTP protobuf
exporter (opentelemetry-exporter-otlp-proto-http), inside a span so the records
carry trace and span ids. Prints each export's result."""

import json
import logging
import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

results = []


class Recording(OTLPLogExporter):
    def export(self, batch):
        result = super().export(batch)
        results.append(result.name)
        return result


resource = Resource.create(
    {"service.name": "checkout", "service.instance.id": "pod-7", "host.name": "node-1"}
)
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(
    SimpleLogRecordProcessor(
        Recording(
            endpoint=os.environ["BASE"] + "/v1/logs",
            headers={"Authorization": "Bearer " + os.environ["TOKEN"]},
        )
    )
)
handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
log = logging.getLogger("app.payments")
log.propagate = False
log.addHandler(handler)
log.setLevel(logging.DEBUG)

trace.set_tracer_provider(TracerProvider())
tracer = trace.get_tracer("test")
with tracer.start_as_current_span("charge") as span:
    ids = span.get_span_context()
    log.error("card declined", extra={"amount": 42, "currency": "EUR"})
log.debug("retry scheduled")
provider.shutdown()
print(
    json.dumps(
        {
            "results": results,
            "trace_id": format(ids.trace_id, "032x"),
            "span_id": format(ids.span_id, "016x"),
        }
    )
)
