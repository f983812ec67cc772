from pathlib import Path

import pytest

from service.config import load_settings, settings_from_dict
from service.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid() -> None:
    settings = load_settings(REPO / "config" / "tributary.toml")
    assert settings.source("rthk-local") is not None
    assert "rthk-local" in settings.feed_source_ids(settings.feed("hk"))  # type: ignore[arg-type]


def test_feeds_of_source_by_name_and_by_tag() -> None:
    settings = settings_from_dict(
        {
            "sources": [
                {"id": "a", "url": "https://a.example/", "tags": ["news"]},
                {"id": "b", "url": "https://b.example/"},
                {"id": "c", "url": "https://c.example/"},
            ],
            "feeds": [
                {"name": "named", "title": "N", "sources": ["b"]},
                {"name": "tagged", "title": "T", "tags": ["news"], "sources": ["b"]},
            ],
        }
    )
    assert settings.feeds_of_source("a") == ("tagged",)
    assert settings.feeds_of_source("b") == ("named", "tagged")
    assert settings.feeds_of_source("c") == () and settings.feeds_of_source("unknown") == ()
    copied = settings.model_copy(update={"server": settings.server})
    assert copied.feeds_of_source("b") == ("named", "tagged")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nport = 'x'\n", "server.port"),
        ("[server]\nbogus = 1\n", "server.bogus: Extra inputs are not permitted"),
        ("[[sources]]\nid = 'Bad Id'\nurl = 'https://a.example/'\n", "sources.0.id"),
        ("[[sources]]\nid = 'a'\nurl = 'ftp://a.example/'\n", "sources.0.url"),
        ("[[sources]]\nid = 'a'\nurl = 'https://a.example/'\ntimezone = 'Mars/Base'\n", "unknown time zone"),
        (
            "[[sources]]\nid = 'a'\nurl = 'https://a/'\n[[sources]]\nid = 'a'\nurl = 'https://b/'\n",
            "duplicate source ids: a",
        ),
        ("[[feeds]]\nname = 'f'\ntitle = 'F'\nsources = ['ghost']\n", "unknown sources: ghost"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_SERVER__PORT", "9123")
    monkeypatch.setenv("TRIBUTARY_CONFIG", str(write(tmp_path, "[server]\nport = 8000\n")))
    assert load_settings().server.port == 9123


def test_the_shipped_data_dir_is_the_repository_data_folder() -> None:
    """``make run`` from the repository root keeps its data in ./data, as before."""
    assert load_settings(REPO / "config" / "tributary.toml").storage.data_dir == REPO / "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "conf/data"),  # the default, relative to the file too
        ("[storage]\ndata_dir = 'state'\n", "conf/state"),
        ("[storage]\ndata_dir = '../state'\n", "state"),
    ],
)
def test_a_relative_data_dir_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "t.toml").write_text(text)
    monkeypatch.chdir(tmp_path / "conf")  # wherever the command runs from
    assert load_settings("t.toml").storage.data_dir == tmp_path / expected
    monkeypatch.chdir("/")
    assert load_settings(tmp_path / "conf" / "t.toml").storage.data_dir == tmp_path / expected


def test_an_absolute_data_dir_stays(tmp_path: Path) -> None:
    path = write(tmp_path, f"[storage]\ndata_dir = '{tmp_path / 'elsewhere'}'\n")
    assert load_settings(path).storage.data_dir == tmp_path / "elsewhere"


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{tmp_path}: is a directory, not a config file$"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1/feed", "Invalid IPv6 URL"),
        ("http://[zzz]/feed", "not a valid URL"),
        ("http://a.example:99999/feed", "Port out of range"),
        ("http://a.example:http/feed", "not a valid URL"),
        ("http://a.example:0/feed", "port 0"),
        ("https:///feed", "no host"),
        ("https://a.example/my feed", "whitespace"),
        ("https://a.example/\\u0007", "control characters"),  # TOML unescapes it to BEL
    ],
)
def test_a_source_url_must_be_fetchable_at_load_time(tmp_path: Path, url: str, reason: str) -> None:
    path = write(tmp_path, f'[[sources]]\nid = "a"\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "sources.0.url" in str(err.value) and reason in str(err.value)


@pytest.mark.parametrize(
    "url", ["http://[::1]:8080/feed", "https://bücher.example/feed", "https://a.example:443/x?y=1"]
)
def test_unusual_but_valid_source_urls_load(tmp_path: Path, url: str) -> None:
    assert load_settings(write(tmp_path, f"[[sources]]\nid = 'a'\nurl = {url!r}\n")).sources[0].url == url
