"""`tributary import-opml`: a realistic reader export appended to a config that keeps loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from service.config import load_settings
from tests.conftest import DATA
from tributary.cli import main
from tributary.opml_import import OpmlError, read_opml

EXPORT = DATA / "opml" / "reader-export.opml"
CONFIG = """# my sources
[server]
port = 8080

[[sources]]
id = "ars-technica"
url = "https://example.com/feed"
name = "Mine"

[[feeds]]
name = "all"
title = "All"
sources = ["ars-technica"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tributary.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_reads_nested_folders_and_categories_as_tags() -> None:
    feeds = {f.xml_url: f for f in read_opml(EXPORT.read_bytes())}
    assert feeds["https://planetpython.org/rss20.xml"].tags == ("tech", "python-blogs")
    assert feeds["https://lwn.net/headlines/newrss"].tags == ("news-politics", "linux", "kernel")
    assert feeds["https://rthk.hk/rthk/news/rss/e_expressnews_elocal.xml"].title == "RTHK: Local News"
    assert feeds["https://unicode.example/feed?a=1&b=2"].title == 'Ünïcode Blog "quoted"'
    assert len(feeds) == 9


def test_import_appends_new_sources_and_the_config_still_loads(config: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "import-opml", str(EXPORT)])
    assert result.exit_code == 0, result.output
    assert "added 7 sources" in result.output
    text = config.read_text(encoding="utf-8")
    assert text.startswith(CONFIG)  # appended: comments and layout of the original kept
    settings = load_settings(config)
    by_url = {s.url: s for s in settings.sources}
    assert by_url["https://feeds.arstechnica.com/arstechnica/index"].id == "ars-technica-2"  # id taken
    assert by_url["https://lwn.net/headlines/rss"].id == "lwn-net"
    assert by_url["https://lwn.net/headlines/newrss"].id == "lwn-net-2"
    assert by_url["https://planetpython.org/rss20.xml"].tags == ["tech", "python-blogs"]
    assert by_url["https://no-title.example/atom.xml"].id == "no-title-example"
    assert by_url["https://unicode.example/feed?a=1&b=2"].name == 'Ünïcode Blog "quoted"'
    assert "https://example.com/feed" in by_url and "HTTPS://example.com/feed/" not in by_url  # already present
    assert not any(s.url.startswith("feed:") for s in settings.sources)
    assert "skipped feed://podcasts.example/feed.xml: not an http(s) URL" in result.output

    again = CliRunner().invoke(main, ["--config", str(config), "import-opml", str(EXPORT)])
    assert again.exit_code == 0 and "added 0 sources" in again.output
    assert config.read_text(encoding="utf-8") == text  # idempotent


def test_dry_run_prints_and_changes_nothing(config: Path) -> None:
    result = CliRunner().invoke(main, ["import-opml", "--config", str(config), "--dry-run", str(EXPORT)])
    assert result.exit_code == 0, result.output
    assert '[[sources]]\nid = "planet-python"\nurl = "https://planetpython.org/rss20.xml"' in result.output
    assert config.read_text(encoding="utf-8") == CONFIG


def test_refuses_entity_expansion(tmp_path: Path, config: Path) -> None:
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<opml version="2.0"><body><outline text="&b;" xmlUrl="https://x.example/&b;"/></body></opml>'
    )
    with pytest.raises(OpmlError, match="entities"):
        read_opml(bomb.read_bytes())
    result = CliRunner().invoke(main, ["--config", str(config), "import-opml", str(bomb)])
    assert result.exit_code == 1 and "entities" in result.output
    assert config.read_text(encoding="utf-8") == CONFIG


@pytest.mark.parametrize("content", [b"not xml at all <", b"<html><body/></html>"])
def test_bad_files_are_clear_errors(tmp_path: Path, config: Path, content: bytes) -> None:
    path = tmp_path / "x.opml"
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["--config", str(config), "import-opml", str(path)])
    assert result.exit_code == 1 and "x.opml" in result.output
    assert config.read_text(encoding="utf-8") == CONFIG


def test_urls_no_fetch_could_use_are_skipped_with_the_reason(config: Path, tmp_path: Path) -> None:
    export = tmp_path / "bad.opml"
    export.write_text(
        '<opml version="2.0"><body>'
        '<outline text="Broken" xmlUrl="http://[::1/feed"/>'
        '<outline text="Far port" xmlUrl="https://ports.example:99999/feed"/>'
        '<outline text="Fine" xmlUrl="https://fine.example/feed"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["--config", str(config), "import-opml", str(export)])
    assert result.exit_code == 0, result.output
    assert "added 1 sources" in result.output
    assert "skipped http://[::1/feed: not a valid URL" in result.output
    assert "skipped https://ports.example:99999/feed: not a valid URL" in result.output
    assert [s.url for s in load_settings(config).sources][-1] == "https://fine.example/feed"
