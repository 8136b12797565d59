"""`pos-agent api-doc`: docs/api.md, the integrator's reference, written from the OpenAPI
document so the two never differ (tests/api/test_openapi.py fails when the page is stale).

The document comes from the route table of an app built on a throwaway database: no daemon, no
provider and no configuration file are needed, and nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import offline_store as store
from agent.api.app import create_app
from agent.api.openapi import openapi_document
from agent.config import AgentConfig
from agent.core.runtime import Runtime
from agent.core.services import Services
from agent.elise.client import EliseClient
from agent.json_codec import dumps, loads
from agent.secrets import ApiKey

DEFAULT_OUTPUT = Path("docs/api.md")
# Only the route table is read: the issuer and key are there because a Runtime needs them.
_ISSUER = {"vat": "EL094019245", "name": "api-doc", "address": {"city": "Αθήνα"}}
_PROVIDER = {"base_url": "http://127.0.0.1:9", "portal_url": "http://127.0.0.1:9/"}


def local_api_document() -> dict[str, Any]:
    """The OpenAPI document exactly as `GET /openapi.json` serves it (JSON types)."""
    with tempfile.TemporaryDirectory(prefix="pos-agent-api-doc-") as root:
        config = AgentConfig.model_validate(
            {"state_dir": root, "issuer": _ISSUER, "provider": _PROVIDER}
        )
        conn = store.open_database(config.database_path)
        key = ApiKey("api-doc-" + "0" * 24)
        client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=key)
        try:
            runtime = Runtime(config=config, api_key=key, conn=conn, client=client)
            app = create_app(Services(runtime))
            document = openapi_document(app.router.routes)
            runtime.rollback_guard.close()
        finally:
            asyncio.run(client.aclose())
            conn.close()
    parsed: dict[str, Any] = loads(dumps(document, allow_float=True))
    return parsed


def _json(value: Any) -> str:
    return dumps(value, allow_float=True).decode("utf-8")


def _schema_name(schema: dict[str, Any]) -> str:
    """`DocumentAnswer` for a reference, else the JSON type."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_schema_name(option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(f"`{_json(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{_json(schema['const'])}`"
    kind = str(schema.get("type", "any"))
    if schema.get("format"):
        kind += f" ({schema['format']})"
    return kind


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", operation["summary"] + ".", ""]
    if "description" in operation:
        lines += ["*Idempotent by `request_id`* (see [the rule](#idempotency)).", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type |", "|---|---|---|"]
        lines += [
            f"| `{p['name']}` | {p['in']} | {_cell(_schema_name(p['schema']))} |"
            for p in parameters
        ]
        lines.append("")
    body = operation.get("requestBody")
    if body is not None:
        media = body["content"]["application/json"]
        lines += [f"Request body: {_schema_name(media['schema'])}", ""]
        if "example" in media:
            lines += ["```json", _json(media["example"]), "```", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in operation["responses"].items():
        content = response.get("content", {})
        media_type, media = next(iter(content.items()))
        shape = _schema_name(media["schema"]) if media_type == "application/json" else media_type
        lines.append(f"| {status} | {_cell(response['description'])} | {_cell(shape)} |")
    return [*lines, ""]


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [" ".join(str(schema["description"]).split()), ""]
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {_schema_name(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | notes |", "|---|---|---|---|"]
    for field, spec in properties.items():
        notes = spec.get("description", "")
        if "default" in spec:
            notes = f"default `{_json(spec['default'])}`. {notes}".strip()
        lines.append(
            f"| `{field}` | {_cell(_schema_name(spec))} | {'yes' if field in required else ''} "
            f"| {_cell(notes)} |"
        )
    return [*lines, ""]


def render(document: dict[str, Any]) -> str:
    info = document["info"]
    lines = [
        f"# {info['title']} {info['version']}",
        "",
        "Generated from the OpenAPI document (`GET /openapi.json`) by `pos-agent api-doc`; do not",
        "edit by hand. The flows, with curl examples, are in [integrator.md](integrator.md).",
        "",
    ]
    description, _, idempotency = info["description"].partition("\n\n")
    lines += [description, "", "## Idempotency", "", idempotency, "", "## Operations", ""]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            lines += _operation(path, method, operation)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document["components"]["schemas"].items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def api_doc_command(args: argparse.Namespace) -> int:
    output: Path = args.output
    output.write_text(render(local_api_document()), encoding="utf-8")
    print(f"written to {output}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "api-doc", help="write the local API's reference (docs/api.md) from its OpenAPI document"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help=f"where to write it (default: {DEFAULT_OUTPUT})",
    )
    parser.set_defaults(handler=api_doc_command)
