"""The floor of ``bench/arrivals.py``: a bare Django WSGI app that parses the JSON body and
INSERTs its items into one scratch table (one multi-row INSERT), answering JSON, served by the
same gunicorn command and settings as the Procfile's web process."""

from __future__ import annotations

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.db import connection  # noqa: E402

TABLE = "bench_http_floor"


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    items = [body] if isinstance(body, dict) else body
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (item) VALUES {', '.join(['(%s)'] * len(items))} RETURNING id",
            [json.dumps(item) for item in items],
        )
        answer = [{"id": pk} for (pk,) in cursor.fetchall()]
    data = json.dumps(answer[0] if isinstance(body, dict) else answer).encode()
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
