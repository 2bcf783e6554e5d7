"""Validates the OpenAPI document a running hybridb server serves against the OpenAPI 3.1
specification (openapi-spec-validator), printing every error; exits 1 if there is any.

    python scripts/openapi/validate.py --url http://127.0.0.1:7411 [--key KEY] [--save FILE]

Run by crates/hybridb-cli/tests/openapi_client.rs inside the virtual environment it makes
from requirements.txt beside this file.
"""

import argparse
import json
import sys
import urllib.request

from openapi_spec_validator import OpenAPIV31SpecValidator


def fetch_document(url: str, key: str | None) -> dict:
    """The document at `url`/openapi.json, with `key` as the bearer token if given."""
    request = urllib.request.Request(url.rstrip("/") + "/openapi.json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--key", help="an API key (read-only is enough)")
    parser.add_argument("--save", help="also write the document to this file")
    args = parser.parse_args()

    document = fetch_document(args.url, args.key)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
    errors = []
    version = str(document.get("openapi", ""))
    if not version.startswith("3.1."):
        errors.append(f"openapi: {version!r} is not a 3.1 version")
    for error in OpenAPIV31SpecValidator(document).iter_errors():
        where = ".".join(str(part) for part in error.absolute_path) or "(document)"
        errors.append(f"{where}: {error.message}")
    for error in errors:
        print(error)
    operations = sum(
        1
        for item in document.get("paths", {}).values()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    )
    print(f"{len(errors)} errors ({operations} operations checked)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
