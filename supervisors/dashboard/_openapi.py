"""The OpenAPI document of the dashboard's JSON API (``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def _obj(*required: str, **properties: Any) -> dict[str, Any]:
    props = {name: {"type": "string"} for name in required}
    props.update(properties)
    return {"type": "object", "required": list(required), "properties": props}


_NULLABLE_STR = {"type": ["string", "null"]}
_ERROR = _obj("error", status={"type": "integer"})
_NODE: dict[str, Any] = {
    "type": "object",
    "required": ["path", "name", "kind", "state", "strategy", "restarts", "uptime_seconds", "mailbox_depth",
                 "messages_handled", "last_error", "last_traceback", "children"],
    "properties": {
        "path": {"type": "string"}, "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["actor", "supervisor", "dynamic_supervisor", "job"]},
        "state": {"type": "string"}, "strategy": _NULLABLE_STR, "restarts": {"type": "integer"},
        "uptime_seconds": {"type": ["number", "null"]}, "mailbox_depth": {"type": ["integer", "null"]},
        "messages_handled": {"type": ["integer", "null"]}, "last_error": _NULLABLE_STR,
        "last_traceback": _NULLABLE_STR, "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        "queue": {"type": "object"}, "job": {"type": "object"},
    },
}
_JOB = {
    "type": "object",
    "required": ["id", "system", "name", "queue", "state", "args", "attempt", "max_attempts", "run_at",
                 "created_at", "finished_at", "errors", "result", "parent_id", "continue_on", "continuations",
                 "priority", "concurrency_key", "concurrency_limit", "cancel_requested"],
    "properties": {
        "id": {"type": "integer"}, "system": {"type": "string"}, "name": {"type": "string"},
        "queue": {"type": "string"}, "state": {"type": "string"}, "args": {}, "attempt": {"type": "integer"},
        "max_attempts": {"type": "integer"}, "run_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"}, "finished_at": _NULLABLE_STR,
        "errors": {"type": "array", "items": _obj("at", "error", "traceback", attempt={"type": "integer"})},
        "result": {"description": "what the job returned (JSON), once it succeeded; else null"},
        "parent_id": {"type": ["integer", "null"], "description": "the job this continuation continues"},
        "continue_on": {"type": ["string", "null"], "enum": ["success", "failure", "any", None]},
        "continuations": {"type": "array", "items": {"type": "integer"},
                          "description": "the ids of the jobs that continue this one"},
        "priority": {"type": "integer", "description": "higher is claimed first within the queue"},
        "concurrency_key": {"type": ["string", "null"],
                            "description": "jobs with this key run at most concurrency_limit at once"},
        "concurrency_limit": {"type": ["integer", "null"]},
        "cancel_requested": {"type": "boolean", "description": "its cancellation was asked while it ran"},
    },
}
_PROGRESS = {
    "type": "object",
    "required": ["attempt", "fraction", "message", "updated_at", "lines", "dropped"],
    "properties": {
        "attempt": {"type": "integer"}, "fraction": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "message": {"type": "string"}, "updated_at": {"type": "string", "format": "date-time"},
        "lines": {"type": "array", "items": _obj("at", "text")}, "dropped": {"type": "integer"},
    },
}
_JOB["properties"]["progress"] = {  # type: ignore[index]
    "type": "array", "items": {"$ref": "#/components/schemas/AttemptProgress"}}
_LEDGER_ENTRY = {
    "type": "object",
    "required": ["fire_time", "outcome", "job_id", "reason", "recorded_at", "host"],
    "properties": {
        "fire_time": {"type": "string", "format": "date-time"},
        "outcome": {"type": "string", "enum": ["fired", "skipped", "missed", "deduplicated"]},
        "job_id": {"type": ["integer", "null"]}, "reason": {"type": "string"},
        "recorded_at": {"type": "string", "format": "date-time"}, "host": {"type": "string"},
    },
}
_PROGRESS_PAGE = {
    "type": "object", "required": ["job_id", "system", "attempts"],
    "properties": {"job_id": {"type": "integer"}, "system": {"type": "string"},
                   "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/AttemptProgress"}}},
}
_LEDGER = {
    "type": "object", "required": ["schedule", "system", "items"],
    "properties": {"schedule": {"type": "string"}, "system": {"type": "string"},
                   "items": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerEntry"}}},
}
_ITEMS = {"type": "object", "required": ["items"], "properties": {"items": {"type": "array"}}}
_JOB_PAGE = {
    "type": "object",
    "required": ["system", "filter", "limit", "next", "previous", "total", "counts", "queues", "actions", "items"],
    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                   "next": {"type": ["string", "null"], "description": "cursor of the next page (older jobs)"},
                   "previous": {"type": ["string", "null"], "description": "cursor of the previous page (newer jobs)"},
                   "total": {"type": ["integer", "null"],
                             "description": "jobs matched, when the counts give it (state and queue filters only)"},
                   "filter": {"type": "object"}, "counts": {"type": "object"}},
}
_ACTION = {"type": "object", "required": ["action", "ok"], "properties": {"ok": {"type": "boolean"}}}
_BULK = {"type": "object", "required": ["action", "filter", "done", "failed", "reasons"]}
_STATS = {"type": "object", "required": ["system", "start", "bucket_seconds", "buckets"]}
_HOST = {
    "type": "object",
    "required": ["id", "hostname", "pid", "this", "alive", "started_at", "heartbeat_at", "heartbeat_age_seconds",
                 "stopped_at", "singletons", "running"],
    "properties": {
        "id": {"type": "string"}, "hostname": {"type": "string"}, "pid": {"type": "integer"},
        "this": {"type": "boolean"}, "alive": {"type": "boolean"}, "started_at": _NULLABLE_STR,
        "heartbeat_at": {"type": "string", "format": "date-time"}, "heartbeat_age_seconds": {"type": "number"},
        "stopped_at": _NULLABLE_STR, "singletons": {"type": "array", "items": {"type": "string"}},
        "running": {"type": "array", "items": {"type": "integer"}},
    },
}
_HOSTS = {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
    "type": "object", "required": ["system", "store", "hosts_table", "hosts"],
    "properties": {"system": _NULLABLE_STR, "store": _NULLABLE_STR, "hosts_table": {"type": "boolean"},
                   "error": {"type": "string", "description": "the store is unreachable: no hosts listed"},
                   "hosts": {"type": "array", "items": {"$ref": "#/components/schemas/Host"}}}}}}}
_CONFIG = {"type": "object", "required": ["host", "dashboard", "jobs", "settings"],
           "properties": {"jobs": {"type": "array", "items": {"type": "object"}},
                          "settings": {"type": ["object", "null"]}}}


def _param(name: str, where: str = "query", kind: str = "string", required: bool = False,
           enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _ok(_ERROR, description)


_SYSTEM = _param("system")


def _search_params() -> list[dict[str, Any]]:
    """The search parameters of ``/api/jobs`` and the bulk actions (`JobQuery`)."""
    from supervisors.jobs import JobState

    states = {"name": "state", "in": "query", "required": False, "style": "form", "explode": True,
              "description": "a state, several comma-separated, or the parameter repeated",
              "schema": {"type": "array", "items": {"type": "string", "enum": [s.value for s in JobState]}}}
    described = {
        "queue": "the queue, exactly", "name": "the job name, exactly",
        "since": "created at or after (ISO 8601; without an offset: in the tz parameter's zone or the default)",
        "until": "created before (ISO 8601, as since)",
        "args_contains": "the arguments' JSON text contains this text (case-sensitive)",
        "cursor": "a next or previous cursor of an earlier page",
    }
    out = [states]
    out += [{**_param(name), "description": text} for name, text in described.items()]
    out.append({"name": "args_match", "in": "query", "required": False, "style": "form", "explode": True,
                "description": "PATH=VALUE, repeatable: the value at the dotted PATH of the arguments equals "
                               "VALUE (read as JSON when it parses, else a string)",
                "schema": {"type": "array", "items": {"type": "string"}}})
    out.append({**_param("limit", kind="integer"), "description": "jobs per page, 1 to 1000 (default 50)"})
    return out
_JOB_ID = _param("job_id", "path", "integer")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route under ``/api`` (tests check it against the app)."""
    from ._views import ACTIONS, QUEUE_ACTIONS, SCHEDULE_ACTIONS

    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    denied = {"401": _err("no or wrong token"), "403": _err("read-only token, or a cross-site request")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "trio-supervisors dashboard API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Node": _NODE, "Job": _JOB, "Error": _ERROR, "Host": _HOST, "AttemptProgress": _PROGRESS,
                        "LedgerEntry": _LEDGER_ENTRY},
        },
        "security": auth,
        "paths": {
            "/api/tree": {"get": {"summary": "The supervision tree, with the running jobs under their worker",
                                  "responses": {"200": _ok({"$ref": "#/components/schemas/Node"}, "the root node"),
                                                **denied}}},
            "/api/jobs": {"get": {
                "summary": "Search jobs, newest first, a page at a time (keyset paging by cursor), "
                           "with the counts by state",
                "parameters": [_SYSTEM, *_search_params(), _param("tz")],
                "responses": {"200": _ok(_JOB_PAGE, "the page"),
                              "400": _err("malformed search: the message names the parameter"),
                              "404": _err("unknown job system"), **denied}}},
            "/api/jobs/{job_id}": {"get": {
                "summary": "One job: arguments, attempts, errors with tracebacks",
                "parameters": [_JOB_ID, _SYSTEM],
                "responses": {"200": _ok({"$ref": "#/components/schemas/Job"}, "the job"),
                              "404": _err("no such job"), **denied}}},
            "/api/jobs/{job_id}/progress": {"get": {
                "summary": "What each attempt of a job reported: progress, message, log lines (live while it runs)",
                "parameters": [_JOB_ID, _SYSTEM],
                "responses": {"200": _ok(_PROGRESS_PAGE, "the attempts, oldest first"),
                              "404": _err("no such job"), **denied}}},
            "/api/jobs/{job_id}/{action}": {"post": {
                "summary": "Retry, cancel, delete or requeue one job",
                "parameters": [_JOB_ID, _param("action", "path", enum=list(ACTIONS)), _SYSTEM],
                "responses": {"200": _ok(_ACTION, "done"), "404": _err("no such job or action"),
                              "409": _err("the job's state does not allow it"), **denied}}},
            "/api/jobs/bulk/{action}": {"post": {
                "summary": "Do an action on every job a search matches, in batches (the search parameters "
                           "in the query or the JSON body; cursor and limit are ignored)",
                "parameters": [_param("action", "path", enum=list(ACTIONS)), _SYSTEM, *_search_params(),
                               _param("all")],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": _ok(_BULK, "how many were done and refused"),
                              "400": _err("no filter, or a malformed one"), **denied}}},
            "/api/queues": {"get": {"summary": "Every queue: concurrency, counts, paused, rate limit "
                                               "({limit, per_seconds} or null), latency",
                                    "responses": {"200": _ok(_ITEMS, "the queues"), **denied}}},
            "/api/queues/{name}/{action}": {"post": {
                "summary": "Pause or resume a queue",
                "parameters": [_param("name", "path"), _param("action", "path", enum=list(QUEUE_ACTIONS)), _SYSTEM],
                "responses": {"200": _ok(_ACTION, "done"), "404": _err("no such queue or action"), **denied}}},
            "/api/schedules/{name}/ledger": {"get": {
                "summary": "The fire ledger of a schedule: each occurrence fired, skipped, missed or deduplicated, "
                           "with the reason, newest first",
                "parameters": [_param("name", "path"), _SYSTEM, _param("limit", kind="integer")],
                "responses": {"200": _ok(_LEDGER, "the entries"), "404": _err("no such schedule"), **denied}}},
            "/api/schedules": {"get": {"summary": "Every recurring schedule: cron, zone, next and last run, "
                                                  "last result, policies",
                                       "responses": {"200": _ok(_ITEMS, "the schedules"), **denied}}},
            "/api/schedules/{name}/{action}": {"post": {
                "summary": "Trigger, pause or resume a recurring schedule",
                "parameters": [_param("name", "path"), _param("action", "path", enum=list(SCHEDULE_ACTIONS)),
                               _SYSTEM],
                "responses": {"200": _ok(_ACTION, "done"), "404": _err("no such schedule or action"), **denied}}},
            "/api/stats": {"get": {
                "summary": "Succeeded jobs and failed attempts per minute over the last hour, from the store",
                "parameters": [_SYSTEM, _param("minutes", kind="integer")],
                "responses": {"200": _ok(_STATS, "the buckets"), **denied}}},
            "/api/hosts": {"get": {
                "summary": "The hosts of each job system's store: heartbeat, alive, singletons held, running jobs",
                "responses": {"200": _ok(_HOSTS, "the hosts, per job system (this one only without a hosts table)"),
                              **denied}}},
            "/api/config": {"get": {"summary": "This host's effective settings, every secret shown as '***'",
                                    "responses": {"200": _ok(_CONFIG, "the settings"), **denied}}},
            "/api/openapi.json": {"get": {"summary": "This document",
                                          "responses": {"200": _ok({"type": "object"}, "OpenAPI 3.1")}}},
        },
    }
