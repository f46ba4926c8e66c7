"""The submit body in the OpenAPI document: one schema per registered task, a ``oneOf``
discriminated by ``task``.

With only the generic ``SubmitRequest`` (``args``: any object) a generated client or a fuzzer
cannot build a submit the server accepts. Each task's schema carries its own ``args`` schema,
the queues the server accepts and ``callback_url`` only where callbacks are enabled, so what
the document calls valid is what the server stores.
"""

from __future__ import annotations

import re
from typing import Any

from conveyor.api.limits import INT_MAX, INT_MIN, MAX_DEPTH
from conveyor.app import Conveyor
from conveyor.webhooks.notifier import internal_task

REF = "#/components/schemas/"


def _schema_name(task: str) -> str:
    return "Submit_" + re.sub(r"[^A-Za-z0-9_.-]", "_", task)


def _bounded(node: Any) -> Any:
    """Add the engines' 64-bit bounds to every integer of an args schema that has none."""
    if isinstance(node, dict):
        out = {k: _bounded(v) for k, v in node.items()}
        if out.get("type") == "integer":
            out.setdefault("minimum", INT_MIN)
            out.setdefault("maximum", INT_MAX)
        return out
    if isinstance(node, list):
        return [_bounded(v) for v in node]
    return node


def _needs_args(conveyor: Conveyor, name: str) -> bool:
    return any(f.is_required() for f in conveyor.tasks[name].args_model.model_fields.values())


def _args_schema(conveyor: Conveyor, name: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """The task's args schema, its models hoisted into ``schemas`` under a per-task prefix."""
    prefix = _schema_name(name) + "_"
    model = conveyor.tasks[name].args_model
    schema = model.model_json_schema(ref_template=REF + prefix + "{model}")
    for def_name, definition in schema.pop("$defs", {}).items():
        schemas[prefix + def_name] = _bounded(definition)
    return _bounded(schema)


def submit_schemas(
    conveyor: Conveyor, base: dict[str, Any], schemas: dict[str, Any], queues: list[str]
) -> dict[str, Any]:
    """Add a ``Submit_<task>`` schema per public task to ``schemas``; return the request body schema."""
    mapping: dict[str, str] = {}
    for name in sorted(conveyor.tasks):
        if internal_task(name):
            continue
        properties = dict(base["properties"])
        properties["task"] = {"type": "string", "const": name, "title": "Task"}
        properties["args"] = _args_schema(conveyor, name, schemas)
        properties["queue"] = {"type": "string", "enum": queues, "description": properties["queue"].get("description")}
        # depends_on and quorum are accepted too (SubmitRequest, docs/api.md), but whether a
        # submit with them is stored depends on which jobs exist, which no schema can say
        properties.pop("depends_on", None)
        properties.pop("quorum", None)
        settings = conveyor.webhooks
        if settings is None or not settings.callbacks:
            properties.pop("callback_url", None)  # refused by this server: not part of a valid submit
        if conveyor.email is None or conveyor.email.server is None:
            properties.pop("notify", None)  # no SMTP server: refused likewise
        schema_name = _schema_name(name)
        schemas[schema_name] = {
            "title": schema_name,
            "type": "object",
            "properties": properties,
            "required": ["task", "args"] if _needs_args(conveyor, name) else ["task"],
            "additionalProperties": False,
            "not": {
                "description": "delay and run_at are exclusive",
                "required": ["delay", "run_at"],
                "properties": {"delay": {"type": "number"}, "run_at": {"type": "string"}},
            },
            "description": f"Submit a job of task {name!r}. "
            f"Arguments are at most {MAX_DEPTH} levels deep; integers fit in 64 bits. "
            "To wait for other jobs add depends_on (job ids) and optionally quorum (see SubmitRequest).",
        }
        mapping[name] = REF + schema_name
    if not mapping:
        return {"$ref": REF + "SubmitRequest"}
    return {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "task", "mapping": mapping},
    }
