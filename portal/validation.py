"""JSON Schemas of outgoing messages, one file per message kind.

A kind's schema is the file ``<app>/schemas/<kind>.schema.json`` of any of the
portal's own apps, so an app adds a message kind by adding a file.

A payload is checked first by jsonschema-rs, a compiled validator of the same file
(Draft 2020-12, formats checked), about fifty times faster than the reference
``jsonschema``; only a payload it rejects goes through ``jsonschema``, whose messages
word the reasons kept on the INVALID row. Each is imported on first use (some 5 MB each), so a
process that never checks a payload (the dispatcher, most of the cluster's processes) does not
carry them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from django.apps import apps
from django.conf import settings

if TYPE_CHECKING:
    import jsonschema

SCHEMA_SUFFIX = ".schema.json"


class UnknownKind(LookupError):
    pass


def schema_dirs() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return [
        Path(app.path) / "schemas"
        for app in apps.get_app_configs()
        if Path(app.path).is_relative_to(base) and (Path(app.path) / "schemas").is_dir()
    ]


def known_kinds() -> list[str]:
    """Every message kind with a schema file."""
    return sorted(path.name.removesuffix(SCHEMA_SUFFIX) for folder in schema_dirs() for path in folder.glob(f"*{SCHEMA_SUFFIX}"))


@functools.cache
def schema_of(kind: str) -> dict:
    for folder in schema_dirs():
        path = folder / f"{kind}{SCHEMA_SUFFIX}"
        if path.is_file():
            return json.loads(path.read_text())
    raise UnknownKind(f"no JSON Schema file for message kind {kind!r}")


@functools.cache
def validator_for(kind: str) -> jsonschema.protocols.Validator:
    import jsonschema

    schema = schema_of(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@functools.cache
def compiled_validator(kind: str):
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema_of(kind), validate_formats=True)


def schema_errors(kind: str, payload: object) -> list[str]:
    """Every way ``payload`` breaks the schema of ``kind``, as readable lines ([] when valid)."""
    if compiled_validator(kind).is_valid(payload):
        return []
    validator = validator_for(kind)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    lines = [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]
    # The two validators disagree only on corner cases; the compiled one is the stricter
    # gate, so a payload it refuses stays INVALID even when jsonschema finds no words for it.
    return lines or [f"(root): rejected by the {kind} schema"]
