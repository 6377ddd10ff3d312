"""The local stack's schema registry: the part of Confluent Schema Registry's REST API that
producers, stock readers (confluent-kafka's AvroSerializer/AvroDeserializer, kcat, Kafka Connect)
and `mailstream` use, for Avro schemas, kept in one JSON file.

    POST /subjects/{subject}/versions            register (the same schema again: its id); 409 if incompatible
    POST /subjects/{subject}                     look a schema up: {subject, id, version, schema}
    GET  /subjects                               ["email.delivery-value", ...]
    GET  /subjects/{subject}/versions            [1, 2]
    GET  /subjects/{subject}/versions/{v|latest} {subject, id, version, schema}
    GET  /subjects/{subject}/versions/{v}/schema the schema itself
    GET  /schemas/ids/{id}                       {"schema": "..."}
    GET  /schemas/ids/{id}/versions              [{subject, version}]
    GET  /schemas/types                          ["AVRO"]
    POST /compatibility/subjects/{subject}/versions/{v|latest}   {"is_compatible": bool, "messages": [...]}
    GET|PUT /config, /config/{subject}           {"compatibilityLevel": "BACKWARD"} (the default)

An id names one schema text (JSON, keys sorted) across subjects, as Confluent's does. The checks
are Apache Avro's schema-resolution rules (avro.compatibility) at the subject's level: BACKWARD
(the new schema reads the latest version's data), FORWARD (the latest reads the new one's), FULL
(both), their _TRANSITIVE forms (every version, not only the latest) and NONE.

    python deploy/local/schema_registry.py --port 8085 --data .mailstream/schema-registry.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import avro.schema
from aiohttp import web
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

LEVELS = {
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
}
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def canonical(text: str) -> str:
    """The identity of a schema: its JSON with keys sorted (docs and defaults count)."""
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise RegistryError(422, 42201, f"Invalid schema: not JSON: {exc}") from exc


def parse(text: str) -> avro.schema.Schema:
    try:
        return avro.schema.parse(text)
    except Exception as exc:  # avro raises SchemaParseException and others for a bad schema
        raise RegistryError(422, 42201, f"Invalid schema: {exc}") from exc


def incompatibilities(new: str, existing: list[str], level: str) -> list[str]:
    """Why `new` may not follow `existing` (oldest first) at `level`; empty when it may."""
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    checker = ReaderWriterCompatibilityChecker()
    new_schema = parse(new)
    problems = []
    for n, old in enumerate(against, start=len(existing) - len(against) + 1):
        old_schema = parse(old)
        pairs = []
        if level.startswith(("BACKWARD", "FULL")):
            pairs.append(("the new schema cannot read version", new_schema, old_schema))
        if level.startswith(("FORWARD", "FULL")):
            pairs.append(("version", old_schema, new_schema))
        for what, reader, writer in pairs:
            result = checker.get_compatibility(reader, writer)
            if result.compatibility is not SchemaCompatibilityType.compatible:
                kinds = ", ".join(sorted({i.name for i in result.incompatibilities})) or "incompatible"
                names, where = ", ".join(sorted(map(str, result.messages))), ", ".join(sorted(result.locations))
                detail = f"{kinds} ({names}) at {where}"
                suffix = f" {n}'s data" if what.startswith("the new") else f" {n} cannot read the new schema's data"
                problems.append(f"{what}{suffix}: {detail}")
    return problems


class Registry:
    """Subjects, versions and ids, saved to `path` after every change (atomically)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.schemas: dict[int, str] = {}  # id -> schema text as first registered
        self.subjects: dict[str, list[int]] = {}  # subject -> ids, version n at index n - 1
        self.config: dict[str, str] = {}  # subject ("" for the global level) -> compatibility level
        if path and path.exists():
            saved = json.loads(path.read_text())
            self.schemas = {int(i): t for i, t in saved["schemas"].items()}
            self.subjects = saved["subjects"]
            self.config = saved["config"]

    def _save(self) -> None:
        if not self.path:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"schemas": self.schemas, "subjects": self.subjects, "config": self.config}))
        os.replace(tmp, self.path)

    def level(self, subject: str | None) -> str:
        return self.config.get(subject or "", self.config.get("", "BACKWARD"))

    def id_of(self, text: str) -> int | None:
        key = canonical(text)
        return next((i for i, t in self.schemas.items() if canonical(t) == key), None)

    def versions(self, subject: str) -> list[int]:
        if subject not in self.subjects:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        return self.subjects[subject]

    def version(self, subject: str, version: str) -> tuple[int, int]:
        """(version number, schema id)."""
        ids = self.versions(subject)
        n = len(ids) if version in ("latest", "-1") else _int(version, 42202, "Invalid version")
        if not 1 <= n <= len(ids):
            raise RegistryError(404, 40402, f"Version {version} not found.")
        return n, ids[n - 1]

    def register(self, subject: str, text: str) -> int:
        parse(text)
        schema_id = self.id_of(text)
        ids = self.subjects.get(subject, [])
        if schema_id is not None and schema_id in ids:
            return schema_id  # registered already: the same id, no new version
        problems = incompatibilities(text, [self.schemas[i] for i in ids], self.level(subject))
        if problems:
            raise RegistryError(
                409, 409, f"Schema being registered is incompatible with an earlier schema: {'; '.join(problems)}"
            )
        if schema_id is None:
            schema_id = max(self.schemas, default=0) + 1
            self.schemas[schema_id] = text
        self.subjects[subject] = [*ids, schema_id]
        self._save()
        return schema_id

    def set_level(self, subject: str, level: str) -> str:
        if level not in LEVELS:
            raise RegistryError(422, 42203, f"Invalid compatibility level {level!r}: one of {sorted(LEVELS)}")
        self.config[subject] = level
        self._save()
        return level


def _int(text: str, code: int, message: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RegistryError(422, code, f"{message}: {text}") from None


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, content_type=CONTENT_TYPE)


async def _schema_text(request: web.Request) -> str:
    try:
        body = await request.json()
    except ValueError as exc:
        raise RegistryError(422, 42201, f"Invalid request body: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(422, 42201, "The body needs a 'schema': the schema as a JSON string")
    if body.get("schemaType", "AVRO") != "AVRO":
        raise RegistryError(422, 42201, f"Schema type {body['schemaType']} is not supported here: AVRO only")
    if body.get("references"):
        raise RegistryError(422, 42201, "Schema references are not supported here")
    return body["schema"]


def build_app(registry: Registry) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/")
    async def root(_: web.Request) -> web.Response:
        return _reply({})

    @routes.get("/subjects")
    async def subjects(_: web.Request) -> web.Response:
        return _reply(sorted(registry.subjects))

    @routes.get("/schemas/types")
    async def types(_: web.Request) -> web.Response:
        return _reply(["AVRO"])

    @routes.post("/subjects/{subject}/versions")
    async def register(request: web.Request) -> web.Response:
        return _reply({"id": registry.register(request.match_info["subject"], await _schema_text(request))})

    @routes.post("/subjects/{subject}")
    async def lookup(request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        ids = registry.versions(subject)
        schema_id = registry.id_of(await _schema_text(request))
        if schema_id not in ids:
            raise RegistryError(404, 40403, "Schema not found")
        text = registry.schemas[schema_id]
        return _reply({"subject": subject, "id": schema_id, "version": ids.index(schema_id) + 1, "schema": text})

    @routes.get("/subjects/{subject}/versions")
    async def versions(request: web.Request) -> web.Response:
        return _reply(list(range(1, len(registry.versions(request.match_info["subject"])) + 1)))

    @routes.get("/subjects/{subject}/versions/{version}")
    async def version(request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        n, schema_id = registry.version(subject, request.match_info["version"])
        return _reply({"subject": subject, "id": schema_id, "version": n, "schema": registry.schemas[schema_id]})

    @routes.get("/subjects/{subject}/versions/{version}/schema")
    async def version_schema(request: web.Request) -> web.Response:
        _, schema_id = registry.version(request.match_info["subject"], request.match_info["version"])
        return _reply(json.loads(registry.schemas[schema_id]))

    @routes.get("/schemas/ids/{id}")
    async def by_id(request: web.Request) -> web.Response:
        text = registry.schemas.get(_int(request.match_info["id"], 40403, "Schema not found"))
        if text is None:
            raise RegistryError(404, 40403, "Schema not found")
        return _reply({"schema": text})

    @routes.get("/schemas/ids/{id}/versions")
    async def id_versions(request: web.Request) -> web.Response:
        schema_id = _int(request.match_info["id"], 40403, "Schema not found")
        if schema_id not in registry.schemas:
            raise RegistryError(404, 40403, "Schema not found")
        return _reply(
            [
                {"subject": s, "version": ids.index(schema_id) + 1}
                for s, ids in sorted(registry.subjects.items())
                if schema_id in ids
            ]
        )

    @routes.post("/compatibility/subjects/{subject}/versions/{version}")
    async def compatibility(request: web.Request) -> web.Response:
        subject, text = request.match_info["subject"], await _schema_text(request)
        parse(text)
        if subject not in registry.subjects:
            return _reply({"is_compatible": True, "messages": []})
        n, _ = registry.version(subject, request.match_info["version"])
        level = registry.level(subject)
        existing = [registry.schemas[i] for i in registry.subjects[subject][:n]]
        problems = incompatibilities(text, existing, level)
        return _reply({"is_compatible": not problems, "messages": problems})

    @routes.get("/config")
    async def global_config(_: web.Request) -> web.Response:
        return _reply({"compatibilityLevel": registry.level(None)})

    @routes.put("/config")
    async def set_global_config(request: web.Request) -> web.Response:
        return _reply({"compatibility": registry.set_level("", (await request.json()).get("compatibility", ""))})

    @routes.get("/config/{subject}")
    async def subject_config(request: web.Request) -> web.Response:
        return _reply({"compatibilityLevel": registry.level(request.match_info["subject"])})

    @routes.put("/config/{subject}")
    async def set_subject_config(request: web.Request) -> web.Response:
        level = (await request.json()).get("compatibility", "")
        return _reply({"compatibility": registry.set_level(request.match_info["subject"], level)})

    @routes.get("/healthz")
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @web.middleware
    async def errors(request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except RegistryError as exc:
            return _reply({"error_code": exc.code, "message": exc.message}, status=exc.status)

    app = web.Application(middlewares=[errors])
    app.add_routes(routes)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--data", type=Path, help="the JSON file the registry keeps; in memory without it")
    args = parser.parse_args()
    web.run_app(build_app(Registry(args.data)), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
