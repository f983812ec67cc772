"""``tributary import-opml``: sources from a feed reader's OPML export, appended to the config.

Pure parts (read the OPML, decide which sources are new, spell them as TOML with tomli-w) are
separate from the one write, which happens only after the whole resulting file has validated, so
a bad export can never leave a config that no longer loads. The OPML is read with lxml without
DTD loading, entity resolution or network access, and a document declaring entities is refused
outright.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import tomli_w
from lxml import etree

from service.config import check_web_url, settings_from_dict
from service.errors import ConfigError, TributaryError

MAX_OPML_BYTES = 10 * 1024 * 1024
MAX_ID_CHARS = 64


class OpmlError(TributaryError):
    """The OPML file cannot be read; the message says why."""


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription found in the export."""

    title: str
    xml_url: str
    html_url: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class NewSource:
    id: str
    url: str
    name: str
    tags: tuple[str, ...]


def read_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl``; enclosing outlines and ``category`` give its tags."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"larger than {MAX_OPML_BYTES} bytes")
    if re.search(rb"<!ENTITY", data, re.IGNORECASE):
        raise OpmlError("declares XML entities; refusing to expand them")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if root.tag != "opml":
        raise OpmlError(f"root element is <{etree.QName(root).text}>, not <opml>")
    body = root.find("body")
    feeds: list[OpmlFeed] = []
    if body is not None:
        _walk(body, (), feeds)
    return feeds


def _walk(parent: etree._Element, folders: tuple[str, ...], out: list[OpmlFeed]) -> None:
    for outline in parent.iterfind("outline"):
        title = (outline.get("title") or outline.get("text") or "").strip()
        xml_url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        scheme, sep, rest = xml_url.partition("://")
        xml_url = scheme.lower() + sep + rest  # schemes are case-insensitive; [[sources]] wants http(s)://
        if xml_url:
            categories = [c for raw in (outline.get("category") or "").split(",") for c in raw.split("/")]
            tags = tuple(dict.fromkeys(t for t in (slugify(x) for x in (*folders, *categories)) if t))
            html_url = (outline.get("htmlUrl") or "").strip() or None
            out.append(OpmlFeed(title, xml_url, html_url, tags))
        _walk(outline, (*folders, title) if not xml_url and title else folders, out)


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_ID_CHARS].strip("-")


def _same_url(url: str) -> str:
    """Loose identity for "already present": scheme, case of host and a trailing slash ignored."""
    parts = urlsplit(url.strip())
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}"


def plan_import(feeds: list[OpmlFeed], existing: list[dict[str, object]]) -> tuple[list[NewSource], list[str]]:
    """(sources to add, reasons for what was skipped). Ids are slugs of titles, made unique."""
    taken_ids = {str(s.get("id")) for s in existing}
    known_urls = {_same_url(str(s.get("url", ""))) for s in existing}
    added: list[NewSource] = []
    skipped: list[str] = []
    for feed in feeds:
        try:
            check_web_url(feed.xml_url)
        except ValueError as exc:
            skipped.append(f"{feed.xml_url}: {exc}")
            continue
        if _same_url(feed.xml_url) in known_urls:
            skipped.append(f"{feed.xml_url}: already a source")
            continue
        base = slugify(feed.title) or slugify(urlsplit(feed.xml_url).hostname or "") or "source"
        source_id, n = base, 2
        while source_id in taken_ids:
            suffix = f"-{n}"
            source_id = base[: MAX_ID_CHARS - len(suffix)].rstrip("-") + suffix
            n += 1
        taken_ids.add(source_id)
        known_urls.add(_same_url(feed.xml_url))
        added.append(NewSource(source_id, feed.xml_url, feed.title or source_id, feed.tags))
    return added, skipped


def toml_sources(sources: list[NewSource]) -> str:
    """The ``[[sources]]`` tables for ``sources``, as TOML text to append to a config file.

    Only the new tables are serialised (tomli-w), then appended to the file's text: re-writing
    the whole file through a TOML writer would drop the user's comments and layout.
    """
    if not sources:
        return ""
    tables = [{"id": s.id, "url": s.url, "name": s.name} | ({"tags": list(s.tags)} if s.tags else {}) for s in sources]
    # One [[sources]] header per table, written here: for a single short table tomli-w writes an
    # inline ``sources = [{…}]``, which after the file's last [[feeds]] would become that feed's key.
    return "\n".join("[[sources]]\n" + tomli_w.dumps(table) for table in tables)


def import_opml(opml_path: Path, config_path: Path, *, dry_run: bool = False) -> tuple[list[NewSource], list[str], str]:
    """Read the OPML, append the new sources to the config (unless ``dry_run``).

    Returns (added, skipped, appended TOML text). The resulting file is validated as a whole
    before it replaces the old one (atomically), so a failure leaves the config untouched.
    """
    try:
        data = opml_path.read_bytes()
    except OSError as exc:
        raise OpmlError(f"{opml_path}: {exc.strerror or exc}") from exc
    try:
        feeds = read_opml(data)
    except OpmlError as exc:
        raise OpmlError(f"{opml_path}: {exc}") from exc
    try:
        text = config_path.read_text(encoding="utf-8")
        config = tomllib.loads(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"{config_path}: config file not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    added, skipped = plan_import(feeds, list(config.get("sources", [])))
    appended = toml_sources(added)
    if not added or dry_run:
        return added, skipped, appended
    new_text = (
        text
        + ("" if text.endswith("\n") or not text else "\n")
        + "\n# imported from "
        + " ".join(opml_path.name.split())
        + "\n"
        + appended
    )
    settings_from_dict(tomllib.loads(new_text), origin=str(config_path))  # raises ConfigError, file untouched
    fd, tmp = tempfile.mkstemp(dir=config_path.parent, prefix=f".{config_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(new_text)
        os.chmod(tmp, config_path.stat().st_mode & 0o777)
        os.replace(tmp, config_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return added, skipped, appended
