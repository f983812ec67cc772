"""Every Redis key Tributary writes, in one place. All live under one prefix."""

from __future__ import annotations

import functools
import hashlib

PREFIX = "trib:"
EVERY_KEY = PREFIX + "*"  # SCAN pattern matching every key below

INGEST_STREAM = PREFIX + "ingest"
INGEST_GROUP = "ingest"
INGEST_DEAD = PREFIX + "ingest:dead"  # stream of entries that failed every delivery
SCHEDULE = PREFIX + "schedule"  # zset: source id -> next due (unix seconds)
CHANGES = PREFIX + "changes"  # zset: article id -> last change (unix seconds)
ARQ_QUEUE = PREFIX + "arq:queue"
ARQ_HEALTH = PREFIX + "arq:health"  # arq's worker health line
DISABLED = PREFIX + "disabled"  # set: source ids kept off the schedule (disabled or paused)
FEEDS_MOVED = PREFIX + "feeds:moved"  # set: feeds an ingest batch changed, versions not bumped yet
PAUSED_HOSTS = PREFIX + "hosts:paused"  # zset: host -> end of its Retry-After pause (unix seconds)
METRICS = PREFIX + "metrics"  # hash: counter series -> value, the workers' counters summed (service/store/metrics.py)
DEAD_JOBS = PREFIX + "dead:jobs"  # stream: jobs that failed for good, with payload and error
DEAD_ARTICLES = PREFIX + "dead:articles"  # stream: feed entries that failed normalising or validation


def dead_article_seen(digest: str) -> str:
    """string, expiring: this invalid entry of this source is a dead letter already (not again every poll)."""
    return f"{PREFIX}dead:article-seen:{digest}"


WORKERS = PREFIX + "workers"  # zset: worker id -> its last heartbeat (unix seconds)

# -- sources added, removed or changed at run time (service/store/source_registry.py) --------------
RUNTIME_SOURCES = PREFIX + "sources:runtime"  # hash: source id -> SourceConfig JSON, over the TOML's
REMOVED_SOURCES = PREFIX + "sources:removed"  # set: ids of the TOML's sources removed at run time
SOURCES_VERSION = PREFIX + "sources:version"  # counter: bumped on every change; processes reload on a move


CONTENT_HASHES = PREFIX + "content-hash"  # hash: article id -> content hash, for the poll's new/changed check


def article(article_id: str) -> str:
    return f"{PREFIX}article:{article_id}"


def worker(worker_id: str) -> str:
    """string: one worker process's last heartbeat as JSON, expiring when it stops beating."""
    return f"{PREFIX}worker:{worker_id}"


def source_index(source_id: str) -> str:
    """zset: article id -> published (unix seconds)."""
    return f"{PREFIX}source:{source_id}:index"


def source_state(source_id: str) -> str:
    return f"{PREFIX}source:{source_id}:state"


def activity(minute: int) -> str:
    """hash: polls and new articles counted in one minute (unix minute), for the admin chart; expires."""
    return f"{PREFIX}activity:{minute}"


def poll_history(source_id: str) -> str:
    """list: the source's newest polls as PollRecord JSON, newest first (capped)."""
    return f"{PREFIX}source:{source_id}:polls"


def seen_entries(source_id: str) -> str:
    """string: the keys of the entries the last read found stored unchanged (service/store/seen_entries.py)."""
    return f"{PREFIX}source:{source_id}:seen-entries"


def poll_lease(source_id: str) -> str:
    return f"{PREFIX}source:{source_id}:lease"


def feed_index(feed_name: str) -> str:
    """zset: article id -> published (unix seconds)."""
    return f"{PREFIX}feed:{feed_name}:index"


def feed_version(feed_name: str) -> str:
    """Counter bumped whenever the feed's items change; keys the rendered-bytes cache."""
    return f"{PREFIX}feed:{feed_name}:version"


def feed_members(feed_name: str) -> str:
    """The source ids the feed index was built from, to rebuild it when the config changes."""
    return f"{PREFIX}feed:{feed_name}:members"


# -- WebSub hub (service/hub/subscriptions.py) -------------------------------------------------------

HUB_SEQ = PREFIX + "websub:seq"  # counter: order of hub requests, so a later request wins


def hub_request(request_id: str) -> str:
    """A hub request awaiting verification of intent (JSON, short TTL); jobs carry its id."""
    return f"{PREFIX}websub:request:{request_id}"


def hub_subscription(subscription_id: str) -> str:
    """One subscription (topic + callback) as JSON; TTL a little past its lease."""
    return f"{PREFIX}websub:sub:{subscription_id}"


def hub_applied(subscription_id: str) -> str:
    """Sequence number of the last verified request applied to this topic + callback."""
    return f"{PREFIX}websub:applied:{subscription_id}"


def hub_feed_subscriptions(feed_name: str) -> str:
    """zset: subscription id -> lease expiry (unix seconds, injected clock)."""
    return f"{PREFIX}websub:feed:{feed_name}:subs"


def hub_host_subscriptions(host: str) -> str:
    """zset: subscription id -> lease expiry, of the subscriptions whose callback is on ``host``."""
    return f"{PREFIX}websub:host:{host}:subs"


def hub_rate_client(address: str) -> str:
    """Token bucket (hash) of ``POST /hub`` requests from one client address."""
    return f"{PREFIX}websub:rate:client:{address}"


def hub_rate_callback_host(host: str) -> str:
    """Token bucket (hash) of ``POST /hub`` requests naming a callback on ``host``."""
    return f"{PREFIX}websub:rate:callback:{host}"


def hub_payload(feed_name: str, change: str, fmt: str) -> str:
    """Rendered changed items for one feed change, shared by every delivery of it."""
    return f"{PREFIX}websub:payload:{feed_name}:{change}:{fmt}"


# -- push ingest: our subscriptions to publishers' hubs (service/store/push_state.py) ----------

PUSH_DUE = PREFIX + "push:due"  # zset: source id -> when its subscription next needs a look (unix seconds)


def source_push(source_id: str) -> str:
    """hash: the source's subscription to its publisher's hub (:class:`service.models.PushSubscription`)."""
    return f"{PREFIX}source:{source_id}:push"


def push_callback(callback_id: str) -> str:
    """string: the source id a callback URL ``/push/{callback_id}`` belongs to."""
    return f"{PREFIX}push:callback:{callback_id}"


def push_inbox(source_id: str) -> str:
    """list: signed fat pings of the source waiting for their (coalesced) ingest."""
    return f"{PREFIX}source:{source_id}:push-inbox"


# -- dedup and revisions (docs/article-schema.md) ------------------------------------------

RECENT = PREFIX + "recent"  # zset: article id -> published (unix seconds), fuzzy-title candidates
TITLES = PREFIX + "titles"  # hash: article id -> "source_id\ttitle key", fuzzy-title candidates


def url_owner(canonical_url: str) -> str:
    """string: the id of the article that owns this canonical URL (hashed: URLs can be long)."""
    return f"{PREFIX}url:{hashlib.sha256(canonical_url.encode()).hexdigest()[:32]}"


def alias(article_id: str) -> str:
    """string: the id of the article another source's copy (``article_id``) was merged into."""
    return f"{PREFIX}alias:{article_id}"


def revisions(article_id: str) -> str:
    """list: previous versions of the article as JSON, newest first."""
    return f"{PREFIX}article:{article_id}:revisions"


def pages_seen(source_id: str) -> str:
    """zset: article page URL -> first fetched (unix seconds); a page source fetches each once."""
    return f"{PREFIX}source:{source_id}:pages-seen"


def full_text_seen(source_id: str) -> str:
    """zset: ``{article id}:{feed-side content hash}`` -> fetched (unix seconds), for full_content."""
    return f"{PREFIX}source:{source_id}:full-text-seen"


def feed_changes_channel(db: int) -> str:
    """Pub/sub channel carrying the name of every feed whose version moved. Channels are not
    per-DB in Redis, so the DB number is part of the name."""
    return f"{PREFIX}feed-changes:{db}"


@functools.lru_cache(maxsize=1 << 12)
def host_budget(host: str) -> tuple[str, str, str]:
    """One host's politeness budget: active request slots (zset), rate bucket (hash), pause.
    Remembered per host: every poll's begin and end name them."""
    base = f"{PREFIX}host:{host}"
    return f"{base}:active", f"{base}:rate", f"{base}:pause"


# -- partner API (service/store/changelog.py, api_keys.py, ratelimit.py, webhooks.py) ------------

CHANGELOG = PREFIX + "changelog"  # stream: one entry per committed change of an article, commit order
CHANGELOG_FEEDS = PREFIX + "changelog:feeds"  # hash: article id -> feeds it was in at its last entry
CHANGELOG_HORIZON = PREFIX + "changelog:horizon"  # string: id of the newest entry retention removed
API_CURSOR_SECRET = PREFIX + "api:cursor-secret"  # string: HMAC key of cursors when the config has none
API_KEYS = PREFIX + "api:keys"  # hash: key name -> ApiKey JSON (hash of the token, scope, rate, origins)
API_KEY_TOKENS = PREFIX + "api:key-tokens"  # hash: sha256 of a token -> key name
WEBHOOKS = PREFIX + "api:webhooks"  # hash: webhook id -> Webhook JSON (callback, secret, position, seq)


def rate_bucket(key_name: str) -> str:
    """hash: one API key's token bucket (tokens, last refill), shared by every web process."""
    return f"{PREFIX}api:rate:{key_name}"


def webhook_log(webhook_id: str) -> str:
    """list: the webhook's newest delivery attempts as JSON, newest first (capped)."""
    return f"{PREFIX}api:webhook:{webhook_id}:log"


def webhook_lock(webhook_id: str) -> str:
    """string: held while one worker delivers to the webhook, so deliveries stay in order."""
    return f"{PREFIX}api:webhook:{webhook_id}:lock"
