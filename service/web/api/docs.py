"""``/api/v1/docs``: the OpenAPI document rendered as one plain HTML page on the server (no
script, no CDN), with the problem types and the limits."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from service.api.problems import PROBLEM_TYPES

STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.5rem;overflow:auto}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;"
    "vertical-align:top}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}.get{color:#06c;font-weight:bold}"
)


def _constraints(schema: dict[str, Any]) -> str:
    shown = {k: v for k, v in schema.items() if k not in ("description", "title")}
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items())


def _operation(path: str, spec: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
        f"<td>{'yes' if p.get('required') else ''}</td><td><code>{escape(_constraints(p['schema']))}</code></td>"
        f"<td>{escape(p.get('description', ''))}</td></tr>"
        for p in spec.get("parameters", [])
    )
    responses = "".join(
        f"<li><code>{escape(status)}</code> {escape(r.get('description', ''))}</li>"
        for status, r in spec["responses"].items()
    )
    anchor = escape(spec["operationId"])
    return (
        f'<h3 id="{anchor}"><span class="get">GET</span> <code>/api/v1{escape(path)}</code></h3>'
        f"<p>{escape(spec['summary'])}. {escape(spec.get('description', ''))}</p>"
        + (
            f"<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th><th>meaning</th></tr>{rows}</table>"
            if rows
            else ""
        )
        + f"<ul>{responses}</ul>"
    )


def render_docs(document: dict[str, Any]) -> bytes:
    info = document["info"]
    operations = "".join(_operation(path, item["get"]) for path, item in document["paths"].items())
    problems = "".join(
        f'<tr id="problem-{escape(p.slug)}"><td><code>{escape(p.uri)}</code></td><td>{p.status}</td>'
        f"<td>{escape(p.meaning)}</td></tr>"
        for p in PROBLEM_TYPES.values()
    )
    schemas = "".join(
        f'<details id="schema-{escape(name)}"><summary><code>{escape(name)}</code></summary>'
        f"<pre>{escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre></details>"
        for name, schema in document["components"]["schemas"].items()
    )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(info["title"])}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head><body>'
        f"<h1>{escape(info['title'])} <small>v{escape(info['version'])}</small></h1>"
        f"<p>{escape(info['description'])}</p>"
        '<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1). Authenticate with '
        "<code>Authorization: Bearer &lt;key&gt;</code>.</p>"
        f"<h2>Endpoints</h2>{operations}"
        f'<h2 id="problems">Problem types</h2><p>Every error is <code>application/problem+json</code> '
        f"(RFC 9457) with one of these <code>type</code>s.</p>"
        f"<table><tr><th>type</th><th>status</th><th>meaning</th></tr>{problems}</table>"
        f'<h2 id="schemas">Schemas</h2>{schemas}</body></html>'
    )
    return page.encode()
