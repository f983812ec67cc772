"""Settings: one TOML file validated by pydantic, overridable by ``TRIBUTARY_*`` env vars.

``TRIBUTARY_SERVER__PORT=9000`` overrides ``[server] port``; ``REDIS_URL`` picks the Redis
(without it the embedded Redis of ``[storage] data_dir`` is used). A bad file, an unknown key or
a bad value raises :class:`ConfigError` naming the file, the key and the reason.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tomllib
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cssselect import GenericTranslator, SelectorError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/tributary.toml")
SLUG = r"^[a-z0-9][a-z0-9-]*$"
MIN_ADMIN_KEY_CHARS = 16
ORIGIN = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"


_UNFETCHABLE_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")
"""Whitespace (as ``str.isspace`` has it) and control characters: one C-level scan per fetch hop."""


def check_web_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL a fetch can use, else ``ValueError`` saying why.

    It must have a host, a port (if any) from 1 to 65535, closed IPv6 brackets around a valid
    address, and no whitespace or control characters. ``http://[::1/feed`` passed the old
    ``^https?://`` check and then failed in every poll; it now fails here, once, with a reason.
    """
    if _UNFETCHABLE_CHAR.search(url):
        raise ValueError("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if port == 0:
        raise ValueError("port 0 is not a port to fetch from")
    return url


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    base_url: str = "http://127.0.0.1:8080"
    cache_max_age: int = Field(60, ge=0, description="Cache-Control max-age of published feeds")
    redis_timeout_seconds: float = Field(
        2, gt=0, le=60, description="a web request waits this long for Redis at most, then serves what it has or 503"
    )
    render_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="bytes of rendered feeds (and compressed copies) a web process keeps",
    )

    @model_validator(mode="after")
    def _strip_slash(self) -> ServerConfig:
        self.base_url = self.base_url.rstrip("/")
        return self


class FetchConfig(Section):
    timeout_seconds: float = Field(20, gt=0)
    connect_timeout_seconds: float = Field(10, gt=0)
    max_body_bytes: int = Field(15 * 1024 * 1024, gt=0)
    max_redirects: int = Field(5, ge=0, le=20)
    allow_private_networks: bool = False
    user_agent: str = "Tributary/0.1 (+https://github.com/tributary/tributary; feed aggregator)"
    # How Tributary treats publishers (docs/publishers.md).
    force_unconditional_hours: float = Field(12, gt=0, description="refetch without validators at least this often")
    max_interval_seconds: int = Field(86400, ge=1, description="cap on publisher hints and adaptive intervals")
    retry_after_max_seconds: int = Field(172800, ge=1, description="cap on an honoured Retry-After")
    max_backoff_seconds: int = Field(86400, ge=1, description="cap on the per-source failure backoff")
    host_concurrency: int = Field(2, ge=1, description="concurrent requests per host, across all workers")
    host_requests_per_minute: int = Field(60, ge=1, description="requests per minute per host, across all workers")
    max_consecutive_failures: int = Field(50, ge=1, description="failures in a row before a source is disabled")
    disable_after_failing_days: float = Field(
        30, gt=0, description="days of failing in a row before a source is disabled"
    )
    adaptive_window_items: int = Field(20, ge=2, description="newest items the adaptive interval looks at")
    slow_down_quiet: bool = Field(
        False, description="let the adaptive interval grow past interval_seconds for quiet sources (opt-in)"
    )
    jitter_fraction: float = Field(0.1, ge=0, le=1, description="up to this fraction is added to each interval")


class StorageConfig(Section):
    data_dir: Path = Path("data")
    retention_per_source: int = Field(500, ge=1)
    max_revisions: int = Field(5, ge=0, le=100, description="previous versions kept per article")


class LimitsConfig(Section):
    """What one item may carry, enforced at ingest (docs/article-schema.md#limits).

    A field past its cap is cut (text on a word boundary with "…", HTML on an element boundary
    and sanitised again, so it stays well-formed), a list past its count keeps its first
    members, and a URL past ``url_chars`` is dropped, since a cut URL points somewhere else.
    Every cut is recorded on the article (flag ``truncated``, field ``truncated``).
    """

    title_chars: int = Field(1000, ge=16, le=100_000)
    summary_chars: int = Field(64 * 1024, ge=256, le=16 * 1024 * 1024, description="sanitised HTML")
    content_chars: int = Field(1024 * 1024, ge=256, le=64 * 1024 * 1024, description="sanitised HTML")
    authors: int = Field(20, ge=1, le=1000, description="authors per item")
    author_chars: int = Field(500, ge=16, le=10_000, description="an author's name or e-mail")
    tags: int = Field(50, ge=1, le=1000, description="tags per item")
    tag_chars: int = Field(100, ge=8, le=10_000)
    enclosures: int = Field(50, ge=1, le=1000, description="enclosures per item")
    url_chars: int = Field(
        2048, ge=256, le=65_536, description="longer URLs (link, enclosure, image, author) are dropped"
    )
    guid_chars: int = Field(2048, ge=64, le=65_536, description="the stored guid; identity uses the whole one")
    items_per_poll: int | None = Field(
        None, ge=1, le=100_000, description="newest items one poll normalises; default [storage] retention_per_source"
    )


class SanitiseConfig(Section):
    """What republished HTML may keep (see docs/article-schema.md)."""

    iframe_hosts: list[str] = ["www.youtube.com", "www.youtube-nocookie.com", "player.vimeo.com"]
    allow_data_images: bool = False


class CanonicalConfig(Section):
    """How article URLs are canonicalised; ``strip_params`` entries ending in ``*`` are prefixes."""

    strip_params: list[str] = [
        "utm_*",
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wickedid",
        "rb_clickid",
        "s_cid",
        "ncid",
        "cmpid",
        "ref_src",
        "ref_url",
        "spm",
    ]
    unwrap_redirects: list[str] = []
    sort_params: bool = False


class DedupConfig(Section):
    """Cross-source dedup: same canonical URL always; near-identical titles only when enabled."""

    fuzzy_titles: bool = False
    fuzzy_threshold: float = Field(0.9, gt=0, le=1)
    fuzzy_window_hours: float = Field(48, gt=0)


class ApiConfig(Section):
    """The partner API at ``/api/v1/`` (docs/partners.md). Page sizes and other per-request limits
    are part of the v1 contract, not settings: they never change under a partner's feet."""

    rate_per_minute: int = Field(120, ge=1, le=100_000, description="default requests per minute per key")
    burst: int | None = Field(None, ge=1, le=100_000, description="bucket size; default the key's per-minute rate")
    changelog_retention_days: float = Field(7, gt=0, le=365, description="how long change records are kept")
    cursor_secret: str | None = Field(
        None, min_length=16, description="HMAC key of cursors; default a random one kept in Redis"
    )
    public_feed_cors: list[str] = Field(
        [], description='origins allowed to read the public JSON Feed from a browser, or ["*"]'
    )
    stream_max_seconds: int = Field(3600, ge=10, description="an SSE connection is closed after this long")
    webhook_allow_http: bool = Field(False, description="accept http:// callbacks (tests, private networks)")
    webhook_batch: int = Field(100, ge=1, le=500, description="change records per webhook delivery at most")
    webhook_timeout_seconds: float = Field(10, gt=0, le=120)
    webhook_attempts: int = Field(6, ge=1, le=20, description="tries per delivery before pausing the webhook")
    webhook_retry_base_seconds: float = Field(10, ge=0, description="backoff before try n+1: base * 2**(n-1)")
    webhook_retry_max_seconds: float = Field(3600, ge=0, description="cap on the backoff, and the pause after")

    @field_validator("public_feed_cors")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(ORIGIN, origin):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        return value


class WorkerConfig(Section):
    max_jobs: int = Field(50, ge=1, description="concurrent jobs, and polls, per worker process")
    processes: int = Field(1, ge=1, le=64, description="worker processes `tributary run` starts")
    parse_threads: int = Field(
        1,
        ge=1,
        le=32,
        description="threads parsing, normalising and extracting bodies per worker process (more contend for the GIL)",
    )
    lease_seconds: int = Field(
        120, ge=5, description="how long a claimed poll may run before another worker may take it over"
    )
    heartbeat_seconds: float = Field(5, ge=0.5, le=300, description="how often each worker process says it is alive")
    redis_timeout_seconds: float = Field(10, gt=0, le=300, description="a worker's Redis call gives up after this long")
    ingest_stuck_seconds: int = Field(
        600, ge=10, description="/readyz fails while an article has waited this long to be stored"
    )


class MetricsConfig(Section):
    """``/metrics`` (docs/operations.md)."""

    max_source_series: int = Field(
        50, ge=0, le=10_000, description="per-source series at most: every source when fewer, else the worst ones"
    )


class WebSubConfig(Section):
    """The WebSub hub at ``/hub``: leases, callbacks, delivery retries and limits (docs/websub.md)."""

    default_lease_seconds: int = Field(86400, ge=1, description="lease when the subscriber asks for none")
    min_lease_seconds: int = Field(300, ge=1)
    max_lease_seconds: int = Field(864000, ge=1)
    max_callback_length: int = Field(2048, ge=16, le=8192)
    verify_timeout_seconds: float = Field(10, gt=0, description="total time for one verification GET")
    delivery_attempts: int = Field(6, ge=1, le=20, description="tries per delivery, the first included")
    retry_base_seconds: float = Field(10, ge=0, description="backoff before try n+1: base * 2**(n-1)")
    retry_max_seconds: float = Field(3600, ge=0)
    # Limits (docs/websub.md#limits): requests, then subscriptions; verification GETs also go
    # through the callback host's [fetch] budget, as every request to that host does.
    client_requests_per_minute: int = Field(
        60, ge=1, le=100_000, description="POST /hub requests per minute per client address, all web processes"
    )
    callback_host_requests_per_minute: int = Field(
        60, ge=1, le=100_000, description="POST /hub requests per minute naming a callback on one host"
    )
    max_subscriptions_per_callback_host: int = Field(100, ge=1, le=1_000_000)
    max_subscriptions_per_feed: int = Field(1000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _lease_order(self) -> WebSubConfig:
        if not self.min_lease_seconds <= self.default_lease_seconds <= self.max_lease_seconds:
            raise ValueError("need min_lease_seconds <= default_lease_seconds <= max_lease_seconds")
        return self


class PushConfig(Section):
    """Subscribing to publishers' WebSub hubs (push ingest, docs/websub.md#subscribing-to-publishers).

    Hubs must reach ``[server] base_url``: ``enabled`` unset means on only when that URL's host
    is not loopback, private or a bare name (see :meth:`Settings.push_enabled`).
    """

    enabled: bool | None = Field(None, description="subscribe to hubs; default: on when base_url looks public")
    lease_seconds: int = Field(864000, ge=60, le=31_536_000, description="lease asked of hubs (they may grant less)")
    backup_poll_seconds: int = Field(86400, ge=60, description="poll interval of a source while push is active")
    coalesce_ms: int = Field(
        200, ge=0, le=60_000, description="pings of one source this close become one ingest or poll"
    )
    max_delivery_bytes: int = Field(4 * 1024 * 1024, gt=0, description="largest delivery body accepted")
    verify_within_seconds: int = Field(600, ge=10, description="a request the hub has not verified by then failed")
    fallback_seconds: int = Field(86400, ge=60, description="after a miss, poll normally this long, then resubscribe")
    retry_seconds: int = Field(3600, ge=10, description="first wait before retrying a failed subscription (doubling)")
    retry_max_seconds: int = Field(86400, ge=10, description="longest wait between tries, and the wait after a denial")
    request_timeout_seconds: float = Field(10, gt=0, description="total time for one (un)subscribe request to a hub")


class PageSelectors(Section):
    """CSS selectors for page sources and full-text extraction (``[sources.selectors]``).

    Every selector is optional except ``links`` for ``kind = "page"``; what is not given is
    found by the extractor (trafilatura plus the page's metadata).
    """

    links: str | None = Field(None, description="article links on the listing page")
    title: str | None = None
    published: str | None = None
    updated: str | None = None
    body: str | None = None
    image: str | None = None
    caption: str | None = None
    remove: list[str] = Field([], description="elements dropped before extraction, e.g. share widgets")

    @field_validator("links", "title", "published", "updated", "body", "image", "caption")
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        return _css(value) if value is not None else None

    @field_validator("remove")
    @classmethod
    def _valid_selectors(cls, value: list[str]) -> list[str]:
        return [_css(selector) for selector in value]


def _css(selector: str) -> str:
    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from exc
    return selector


class SourceConfig(Section):
    id: str = Field(pattern=SLUG, max_length=64)
    url: str = Field(pattern=r"^https?://")
    name: str | None = None
    kind: Literal["feed", "page"] = "feed"
    interval_seconds: int = Field(600, ge=1)
    tags: list[str] = []
    timezone: str = Field("UTC", description="zone for dates that carry none, e.g. Asia/Hong_Kong")
    adaptive: bool = Field(True, description="poll busy sources faster (and quiet ones slower with slow_down_quiet)")
    slow_down_quiet: bool | None = Field(
        None, description="poll quiet sources less often than interval_seconds; default [fetch] slow_down_quiet"
    )
    min_interval_seconds: int | None = Field(None, ge=1, description="adaptive floor; default min(interval, 300)")
    max_interval_seconds: int | None = Field(
        None, ge=1, description="adaptive ceiling; default [fetch] max_interval_seconds"
    )
    full_content: bool = Field(False, description="fetch each new item's page and store its extracted text")
    selectors: PageSelectors | None = None
    max_pages_per_poll: int = Field(20, ge=1, le=1000, description="article pages fetched per poll at most")
    push: bool = Field(True, description="subscribe to the feed's WebSub hub when [push] is enabled")

    @model_validator(mode="after")
    def _page_needs_links(self) -> SourceConfig:
        if self.kind == "page" and (self.selectors is None or not self.selectors.links):
            raise ValueError('kind = "page" needs selectors.links (CSS selector of the article links)')
        return self

    @field_validator("url")
    @classmethod
    def _fetchable(cls, value: str) -> str:
        return check_web_url(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def display_name(self) -> str:
        return self.name or self.id


class FeedConfig(Section):
    name: str = Field(pattern=SLUG, max_length=64)
    title: str
    description: str = ""
    sources: list[str] = []
    tags: list[str] = []
    limit: int = Field(100, ge=1, le=1000)
    include_keywords: list[str] = Field([], description="keep only items whose title/summary has one of these words")
    exclude_keywords: list[str] = Field([], description="drop items whose title/summary has one of these words")
    languages: list[str] = Field([], description="keep items in these languages (prefix match: en covers en-GB)")
    min_date: datetime | date | None = Field(None, description="drop items published before this")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIBUTARY_", env_nested_delimiter="__", extra="forbid")

    server: ServerConfig = ServerConfig()
    fetch: FetchConfig = FetchConfig()
    storage: StorageConfig = StorageConfig()
    limits: LimitsConfig = LimitsConfig()
    worker: WorkerConfig = WorkerConfig()
    websub: WebSubConfig = WebSubConfig()
    push: PushConfig = PushConfig()
    sanitise: SanitiseConfig = SanitiseConfig()
    canonical: CanonicalConfig = CanonicalConfig()
    dedup: DedupConfig = DedupConfig()
    api: ApiConfig = ApiConfig()
    metrics: MetricsConfig = MetricsConfig()
    sources: list[SourceConfig] = []
    feeds: list[FeedConfig] = []
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    admin_key: SecretStr | None = Field(
        None,
        validation_alias="TRIBUTARY_ADMIN_KEY",
        exclude=True,  # never dumped with the settings
        description="the admin page's key; unset: no admin page",
    )
    _origin: Path | None = PrivateAttr(default=None)
    _feeds_by_source: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _sources_by_id: dict[str, SourceConfig] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs).
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        # Counted once, not list.count per item: quadratic at 100,000 sources (minutes per load).
        dupes = sorted(i for i, n in Counter(s.id for s in self.sources).items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate source ids: {', '.join(dupes)}")
        dupes = sorted(name for name, n in Counter(f.name for f in self.feeds).items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate feed names: {', '.join(dupes)}")
        ids = {s.id for s in self.sources}
        for feed in self.feeds:
            unknown = [s for s in feed.sources if s not in ids]
            if unknown:
                raise ValueError(f"feed {feed.name!r} names unknown sources: {', '.join(unknown)}")
        return self

    @property
    def items_per_poll(self) -> int:
        """Items one poll keeps (the newest): ``[limits] items_per_poll``, else the retention."""
        return self.limits.items_per_poll or self.storage.retention_per_source

    @field_validator("admin_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_KEY_CHARS:
            raise ValueError(f"TRIBUTARY_ADMIN_KEY must have at least {MIN_ADMIN_KEY_CHARS} characters")
        return value

    @property
    def origin(self) -> Path | None:
        """The config file these settings were read from (None: built in code)."""
        return self._origin

    def with_sources(self, sources: list[SourceConfig]) -> Settings:
        """The same settings with another source list (the run-time overlay applied).

        A feed's ``sources`` list keeps only ids still present, so removing a source at run
        time never makes the settings invalid.
        """
        ids = {s.id for s in sources}
        feeds = [f.model_copy(update={"sources": [i for i in f.sources if i in ids]}) for f in self.feeds]
        data = {
            field.validation_alias if isinstance(field.validation_alias, str) else name: getattr(self, name)
            for name, field in type(self).model_fields.items()
        }
        rebuilt = type(self).model_validate({**data, "sources": sources, "feeds": feeds})
        rebuilt._origin = self._origin
        return rebuilt

    def source(self, source_id: str) -> SourceConfig | None:
        # The private attribute read from pydantic's own dict: ``self._sources_by_id`` goes through
        # BaseModel.__getattr__ (1.8 µs, and a poll job asks once a source); this is 0.1 µs.
        by_id: dict[str, SourceConfig] = self.__pydantic_private__["_sources_by_id"]  # type: ignore[index]
        return by_id.get(source_id)

    def feed(self, name: str) -> FeedConfig | None:
        return next((f for f in self.feeds if f.name == name), None)

    def feed_source_ids(self, feed: FeedConfig) -> list[str]:
        """Sources named by the feed, plus every source carrying any of its tags."""
        wanted = set(feed.sources)
        tags = set(feed.tags)
        return [s.id for s in self.sources if s.id in wanted or tags.intersection(s.tags)]

    def model_post_init(self, context: Any, /) -> None:
        # The store and the ingest ask for every article; rescanning every feed each time
        # made merging and trimming quadratic in the config's size.
        by_source: dict[str, list[str]] = {s.id: [] for s in self.sources}
        for feed in self.feeds:
            for source_id in self.feed_source_ids(feed):
                by_source[source_id].append(feed.name)
        self._feeds_by_source = {source_id: tuple(names) for source_id, names in by_source.items()}
        self._sources_by_id = {s.id: s for s in self.sources}  # a poll job looks its sources up by id

    @property
    def push_enabled(self) -> bool:
        """``[push] enabled``, else whether hubs could plausibly reach ``base_url``."""
        if self.push.enabled is not None:
            return self.push.enabled
        return looks_public(self.server.base_url)

    def feeds_of_source(self, source_id: str) -> tuple[str, ...]:
        """Names of the feeds showing the source (computed once, when the settings are validated)."""
        by_source: dict[str, tuple[str, ...]] = self.__pydantic_private__["_feeds_by_source"]  # type: ignore[index]
        return by_source.get(source_id, ())  # (read as in :meth:`source`: the store asks once an article)


@functools.lru_cache(maxsize=64)  # asked on every poll, of the one base_url
def looks_public(url: str) -> bool:
    """A URL a server elsewhere on the internet could reach: not loopback, private, link-local
    or a name without a dot (``localhost``, an intranet host); ``.local``/``.internal`` neither."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host and not host.endswith((".localhost", ".local", ".internal", ".lan", ".home.arpa"))
    return address.is_global


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config``, else ``$TRIBUTARY_CONFIG``, else ``config/tributary.toml``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TRIBUTARY_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the config file; ``overrides`` replace top-level sections (tests).

    A relative ``[storage] data_dir`` is taken relative to the config file's folder, so the
    same file finds the same data whatever directory the command starts in.
    """
    file = config_path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{file}: config file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{file}: is a directory, not a config file") from exc
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    data.update(overrides)
    settings = settings_from_dict(data, origin=str(file))
    if not settings.storage.data_dir.is_absolute():
        settings.storage.data_dir = Path(os.path.normpath(file.resolve().parent / settings.storage.data_dir))
    settings._origin = file
    return settings


def settings_from_dict(data: dict[str, Any], origin: str = "<settings>") -> Settings:
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{origin}: {problems}") from exc
