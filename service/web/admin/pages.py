"""The admin pages as HTML. Pure: data in, a string out; every value escaped, no script, no CDN.

The pages work without JavaScript: filters and sorting are links and GET forms, actions are
POST forms carrying the CSRF token, and the overview, tables and dead letters refresh themselves
(``<meta http-equiv="refresh">``). The chart is inline SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from service.models import PollRecord
from service.status import Health, ago, push_facts, push_marker
from service.store.dead_letters import DeadLetter
from service.store.overview import Overview, SourceRow

REFRESH_SECONDS = 15
SORTS = ("id", "health", "last_success", "next_poll", "interval", "articles_24h")
HEALTH_ORDER = {h: n for n, h in enumerate(Health)}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#234;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none}header form{margin-left:auto}
main{padding:1em 1.5em}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th a{color:inherit}.cards{display:flex;flex-wrap:wrap;gap:1em;margin-bottom:1em}
.card{background:#fff;border:1px solid #ddd;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.6em}.h-ok{color:#176d2c}.h-stale{color:#9a6700}
.h-failing,.h-disabled{color:#b3261e}.h-paused,.h-new{color:#555}.flash{background:#e7f3e8;padding:.5em 1em}
.error{background:#fbe9e7;padding:.5em 1em}form.inline{display:inline}button{cursor:pointer}
td.err{max-width:28em;overflow-wrap:anywhere;font-size:.9em}code{font-size:.9em}
"""


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f'<time datetime="{e(moment.isoformat())}" title="{e(moment.isoformat())}">{ago(moment, now)}</time>'


def layout(title: str, body: str, *, csrf: str | None, refresh: bool = True, flash: str | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    logout = (
        f'<form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="{e(csrf)}">'
        '<button type="submit">Log out</button></form>'
        if csrf
        else ""
    )
    message = f'<p class="flash" role="status">{e(flash)}</p>' if flash else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
        f"<title>{e(title)} · Tributary admin</title><style>{STYLE}</style></head><body>"
        '<header><strong>Tributary admin</strong><a href="/admin/">Overview</a><a href="/admin/sources">Sources</a>'
        f'<a href="/admin/sources/new">Add a source</a><a href="/admin/dead">Dead letters</a>{logout}</header>'
        f"<main>{message}<h1>{e(title)}</h1>{body}</main></body></html>"
    )


def login_page(error: str | None = None) -> str:
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f'{problem}<form method="post" action="/admin/login"><label>Admin key '
        '<input type="password" name="key" autocomplete="current-password" required autofocus></label> '
        '<button type="submit">Log in</button></form>'
    )
    return layout("Log in", body, csrf=None, refresh=False)


def chart_svg(activity: Sequence[tuple[int, int, int]], width: int = 720, height: int = 160) -> str:
    """Polls per minute (bars) and new articles per minute (line) over the given minutes."""
    if not activity:
        return ""
    top = max(max(p for _, p, _ in activity), max(n for _, _, n in activity), 1)
    step = width / len(activity)
    scale = (height - 20) / top
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - polls * scale:.1f}" width="{max(step - 1, 1):.1f}" '
        f'height="{polls * scale:.1f}" fill="#8ab"><title>{polls} polls</title></rect>'
        for i, (_, polls, _) in enumerate(activity)
    )
    points = " ".join(f"{i * step + step / 2:.1f},{height - new * scale:.1f}" for i, (_, _, new) in enumerate(activity))
    total_polls = sum(p for _, p, _ in activity)
    total_new = sum(n for _, _, n in activity)
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{total_polls} polls, {total_new} new articles in the last hour">'
        f'<rect width="{width}" height="{height}" fill="#fff" stroke="#ddd"/>{bars}'
        f'<polyline points="{points}" fill="none" stroke="#b3261e" stroke-width="2"/>'
        f'<text x="4" y="14" font-size="12">max {top}/min</text></svg>'
        f"<figcaption>Last hour, per minute: polls (bars) {total_polls}, new articles (line) {total_new}"
        "</figcaption></figure>"
    )


def overview_page(
    view: Overview, activity: Sequence[tuple[int, int, int]], *, csrf: str, flash: str | None = None
) -> str:
    cards = "".join(
        f'<a class="card h-{h.value}" href="/admin/sources?{urlencode({"health": h.value})}">'
        f"<b>{view.health.get(h, 0)}</b>{h.value}</a>"
        for h in Health
    )
    beats = "".join(
        f"<li><code>{e(w.host)}</code> pid {w.pid}: last beat {w.age(view.now).total_seconds():.0f} s ago"
        f"{'' if w.fresh(view.now) else ' (stale)'}, {w.jobs_running} running, {w.jobs_done} done,"
        f" {w.jobs_failed} failed</li>"
        for w in view.workers
    )
    rows = [
        (
            "Ingest stream",
            f"{view.ingest_length} queued, {view.ingest_pending} pending, oldest {view.ingest_oldest_seconds:.0f} s",
        ),
        ("Jobs queued", str(view.queue_depth)),
        ("Late sources", f"{view.late_sources} (max lag {view.late_max_seconds:.0f} s)"),
        ("Paused hosts", str(view.paused_hosts)),
        ("Push subscriptions", e(", ".join(f"{s.value} {n}" for s, n in sorted(view.push.items())) or "none")),
        ("Dead letters", f'<a href="/admin/dead">{sum(view.dead_letters.values())}</a>'),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    body = (
        f'<section class="cards" aria-label="Sources by health">{cards}</section>'
        f"{chart_svg(activity)}<h2>Queues</h2><table>{table}</table>"
        f"<h2>Workers</h2><ul>{beats or '<li>no worker beat: are the workers running?</li>'}</ul>"
    )
    return layout("Overview", body, csrf=csrf, flash=flash)


def _sort_key(sort: str, row: SourceRow) -> tuple[object, ...]:
    state = row.state
    match sort:
        case "health":
            return (HEALTH_ORDER[row.health], row.id)
        case "last_success":
            return (state.last_success.timestamp() if state.last_success else 0.0, row.id)
        case "next_poll":
            return (state.next_poll.timestamp() if state.next_poll else float("inf"), row.id)
        case "interval":
            return (row.source.interval_seconds, row.id)
        case "articles_24h":
            return (row.articles_24h, row.id)
    return (row.id,)


def select_rows(rows: Iterable[SourceRow], *, health: str, q: str, sort: str, desc: bool) -> list[SourceRow]:
    """The table's rows: filtered by health and text (id, name, URL, tags, error), sorted."""
    text = q.strip().lower()
    chosen = [
        r
        for r in rows
        if (not health or r.health.value == health)
        and (
            not text
            or any(
                text in (v or "").lower()
                for v in (r.id, r.source.name, r.source.url, " ".join(r.source.tags), r.state.last_error)
            )
        )
    ]
    return sorted(chosen, key=lambda r: _sort_key(sort if sort in SORTS else "id", r), reverse=desc)


def sources_page(
    rows: Sequence[SourceRow],
    now: datetime,
    *,
    health: str,
    q: str,
    sort: str,
    desc: bool,
    csrf: str,
    flash: str | None,
) -> str:
    def head(name: str, label: str) -> str:
        flip = sort == name and not desc
        link = urlencode({"health": health, "q": q, "sort": name, "desc": "1" if flip else ""})
        mark = (" ▼" if desc else " ▲") if sort == name else ""
        return f'<th><a href="/admin/sources?{e(link)}">{e(label)}{mark}</a></th>'

    options = "".join(
        f'<option value="{h}"{" selected" if h == health else ""}>{h or "any health"}</option>'
        for h in ("", *(h.value for h in Health))
    )
    form = (
        f'<form method="get" action="/admin/sources"><select name="health" aria-label="health">{options}</select> '
        f'<input type="search" name="q" value="{e(q)}" placeholder="id, name, URL, tag, error" aria-label="filter"> '
        f'<input type="hidden" name="sort" value="{e(sort)}"><button type="submit">Filter</button></form>'
    )
    lines = []
    for row in rows:
        state = row.state
        error = f"{e(state.last_error_kind)}: {e(state.last_error)}" if state.last_error else ""
        lines.append(
            f'<tr data-source="{e(row.id)}" data-health="{e(row.health.value)}">'
            f'<td><a href="/admin/sources/{e(row.id)}">{e(row.id)}</a></td>'
            f'<td class="h-{e(row.health.value)}">{e(row.health.value)}</td>'
            f'<td>{e(state.last_status or "-")}</td><td class="push">{e(push_marker(state.push, now))}</td>'
            f'<td class="err">{error}</td>'
            f"<td>{when(state.last_success, now)}</td>"
            f"<td>{when(state.next_poll, now)}<br><small>{e(row.why)}</small></td>"
            f"<td>{row.source.interval_seconds} s</td><td>{row.articles_24h}</td></tr>"
        )
    table = (
        "<table><thead><tr>"
        + head("id", "Source")
        + head("health", "State")
        + "<th>HTTP</th><th>Push</th><th>Last error</th>"
        + head("last_success", "Last success")
        + head("next_poll", "Next poll, and why")
        + head("interval", "Interval")
        + head("articles_24h", "Articles 24 h")
        + f"</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )
    body = f"{form}<p>{len(rows)} source(s)</p>{table}"
    return layout("Sources", body, csrf=csrf, flash=flash)


def _action(path: str, label: str, csrf: str, extra: str = "") -> str:
    return (
        f'<form class="inline" method="post" action="{e(path)}"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f'{extra}<button type="submit">{e(label)}</button></form>'
    )


def source_page(row: SourceRow, polls: Sequence[PollRecord], now: datetime, *, csrf: str, flash: str | None) -> str:
    state = row.state
    base = f"/admin/sources/{row.id}"
    actions = [_action(f"{base}/poll", "Poll now", csrf)]
    actions.append(
        _action(f"{base}/resume", "Resume", csrf) if state.paused else _action(f"{base}/pause", "Pause", csrf)
    )
    if state.disabled:
        actions.append(_action(f"{base}/enable", "Re-enable", csrf))
    purge = '<label><input type="checkbox" name="purge" value="1"> and its articles</label> '
    actions.append(_action(f"{base}/remove", "Remove", csrf, purge))
    facts = [
        ("State", f'<span class="h-{e(row.health.value)}" id="health">{e(row.health.value)}</span>'),
        ("URL", e(state.current_url or row.source.url)),
        ("Tags", e(", ".join(row.source.tags) or "-")),
        ("Last poll", when(state.last_poll, now)),
        ("Last success", when(state.last_success, now)),
        ("Last HTTP status", e(state.last_status or "-")),
        ("Last error", e(f"{state.last_error_kind}: {state.last_error}" if state.last_error else "-")),
        ("Failures in a row", str(state.consecutive_failures)),
        ("Disabled", e(state.disabled_reason) if state.disabled else "no"),
        ("Next poll", f"{when(state.next_poll, now)}: {e(row.why)}"),
        ("Interval", f"{row.source.interval_seconds} s"),
        ("Articles in 24 h", str(row.articles_24h)),
    ]
    if state.push is not None:
        facts += [(f"Push: {name}", e(value)) for name, value in push_facts(state.push, now)]
    table = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    history = "".join(
        f"<tr><td>{when(p.at, now)}</td><td>{e(p.outcome)}</td><td>{e(p.status or '-')}</td>"
        f'<td>{p.duration_ms} ms</td><td>{p.bytes}</td><td>{p.new}</td><td class="err">{e(p.error or "")}</td></tr>'
        for p in polls
    )
    body = (
        f"<p>{' '.join(actions)}</p><table>{table}</table><h2>Last {len(polls)} polls</h2>"
        "<table><thead><tr><th>Time</th><th>Outcome</th><th>HTTP</th><th>Duration</th><th>Bytes</th>"
        f"<th>New items</th><th>Error</th></tr></thead><tbody>{history}</tbody></table>"
    )
    return layout(f"Source {row.id}", body, csrf=csrf, flash=flash)


def new_source_page(*, csrf: str, error: str | None = None) -> str:
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f"{problem}<p>Give a feed's address, or a site's: its feed is found from the page's "
        '<code>&lt;link rel="alternate"&gt;</code> or the common paths.</p>'
        f'<form method="post" action="/admin/sources/add"><input type="hidden" name="csrf" value="{e(csrf)}">'
        '<p><label>URL <input type="url" name="url" required size="60"></label></p>'
        '<p><label>Id (optional) <input name="id" pattern="[a-z0-9][a-z0-9-]*" maxlength="64"></label></p>'
        '<p><label>Tags (comma-separated) <input name="tags"></label></p>'
        '<p><label>Interval (seconds, optional) <input type="number" name="interval" min="1"></label></p>'
        '<button type="submit">Add</button></form>'
    )
    return layout("Add a source", body, csrf=csrf, refresh=False)


def job_page(job_id: str, status: str, outcome: str | None, *, csrf: str) -> str:
    done = status in ("complete", "not_found")
    body = f"<p>Job <code>{e(job_id)}</code>: {e(status)}</p>" + (f"<p>{e(outcome)}</p>" if outcome else "")
    if not done:
        body += "<p>This page refreshes until the job is done.</p>"
    page = layout("Adding a source", body, csrf=csrf, refresh=not done)
    return page.replace(f'content="{REFRESH_SECONDS}"', 'content="2"') if not done else page


def dead_page(letters: Sequence[DeadLetter], now: datetime, *, csrf: str, flash: str | None) -> str:
    rows = "".join(
        f'<tr data-letter="{e(d.id)}"><td><code>{e(d.id)}</code></td><td>{when(d.at, now)}</td><td>{e(d.summary)}</td>'
        f'<td class="err">{e(d.error)}</td><td>{d.tries}</td><td>'
        f"<details><summary>payload</summary><pre>{e(d.payload[:4096])}</pre></details></td><td>"
        + ("" if d.kind == "article" else _action(f"/admin/dead/{d.id}/retry", "Retry", csrf) + " ")
        + _action(f"/admin/dead/{d.id}/purge", "Purge", csrf)
        + "</td></tr>"
        for d in letters
    )
    body = (
        f"<p>{len(letters)} dead letter(s): failed jobs and ingest entries, kept until retried or purged, and"
        " feed entries that failed validation, kept until purged (the feed is read again as it changes).</p>"
        "<table><thead><tr><th>Id</th><th>When</th><th>What</th><th>Error</th><th>Tries</th><th>Payload</th>"
        f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return layout("Dead letters", body, csrf=csrf, flash=flash)
