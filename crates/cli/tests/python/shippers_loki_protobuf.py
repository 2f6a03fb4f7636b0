"""A snappy-compressed protobuf push, built with protoc from Loki's definitions
(loki_push.proto) and python-snappy's block format, as Promtail sends it.

Prints the status of each request: a push with labels and structured metadata, the
same without a content type (Loki then reads protobuf too), and a push whose
selector is broken.
"""

import importlib.resources
import json
import os
import sys
import tempfile

import requests
import snappy
from grpc_tools import protoc

here = os.path.dirname(os.path.abspath(__file__))
out = tempfile.mkdtemp()
includes = str(importlib.resources.files("grpc_tools") / "_proto")
assert protoc.main(["protoc", f"-I{here}", f"-I{includes}", f"--python_out={out}", "loki_push.proto"]) == 0
sys.path.insert(0, out)
import loki_push_pb2 as logproto  # noqa: E402

auth = (os.environ["USER"], os.environ["TOKEN"])
url = os.environ["BASE"] + "/loki/api/v1/push"


def push(labels, lines, content_type="application/x-protobuf"):
    request = logproto.PushRequest()
    stream = request.streams.add(labels=labels)
    for seconds, nanos, line, metadata in lines:
        entry = stream.entries.add(line=line)
        entry.timestamp.seconds = seconds
        entry.timestamp.nanos = nanos
        for name, value in metadata.items():
            entry.structuredMetadata.add(name=name, value=value)
    headers = {"Content-Type": content_type} if content_type else {}
    body = snappy.compress(request.SerializeToString())
    response = requests.post(url, data=body, headers=headers, auth=auth)
    return [response.status_code, response.text]


results = [
    push(
        '{job="varlogs", host="web-1", detected_level="error", env="prod"}',
        [
            (1714560000, 123456789, "upstream timed out", {"trace_id": "abc123"}),
            (1714560001, 0, "retrying", {}),
        ],
    ),
    push('{app="no-type", pod="p-1"}', [(1714560002, 0, "without a content type", {})], None),
    push('{job="x", broken', [(1714560003, 0, "never stored", {})]),
]
print(json.dumps(results))
