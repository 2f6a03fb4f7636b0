"""Validates an OpenAPI document (the file named by argv[1]) as OpenAPI 3.1."""

import json
import sys

from openapi_spec_validator import OpenAPIV31SpecValidator

with open(sys.argv[1], encoding="utf-8") as f:
    spec = json.load(f)

errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for error in errors:
    print(f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}")
if errors:
    sys.exit(1)
print(f"valid OpenAPI {spec['openapi']}: {len(spec['paths'])} paths")
