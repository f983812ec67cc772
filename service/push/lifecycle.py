"""A subscription's life, decided purely: the subscription, ``now`` and ``[push]`` in; when it next
needs a look, what to do then, and every change as a :class:`PushTransition` out.

The rules (docs/websub.md#subscribing-to-publishers):

- a poll that finds a hub the source has no subscription to (or a new hub or topic) records it
  as ``discovered``; the maintenance job then subscribes: a fresh callback id and secret,
  status ``pending`` until the hub verifies our intent, ``failed`` if it refuses or has not
  verified within ``verify_within_seconds`` (retried after ``retry_seconds``, doubling up to
  ``retry_max_seconds``), ``denied`` if it says so (retried after ``retry_max_seconds``);
- ``active`` from the first verification: the lease runs from it, renewal is asked at
  :data:`RENEW_AT` of the lease (same callback and secret), again on failure until the lease
  ends; a lease that ends unrenewed is a fresh subscription and an immediate poll;
- while active, the pull is a slow backup (:func:`backup_seconds`); a pull that finds articles
  push never delivered is a miss (:func:`miss_reason`): status ``fallback``, normal polling for
  ``fallback_seconds``, then a fresh subscription;
- a source that leaves (removed, disabled, push switched off) is unsubscribed, then forgotten.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from service.config import PushConfig
from service.models import PushStatus, PushSubscription
from service.push.discovery import HubLink
from service.push.subscriber_protocol import Ping
from service.store.push_state import ATTEMPT_FIELDS, LIVE_AT_HUB, FieldValue, PushTransition

RENEW_AT = 0.8
"""Renew when this fraction of the granted lease has passed."""
IN_FLIGHT_SECONDS = 60
"""A pull this soon after a delivery may see what that delivery is still bringing: no miss."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Action(StrEnum):
    WAIT = "wait"
    SUBSCRIBE = "subscribe"  # a fresh attempt: new callback id and secret
    RESUBSCRIBE_EXPIRED = "expired"  # the lease ended unrenewed: poll now, then a fresh attempt
    RENEW = "renew"  # the same callback and secret, before the lease ends
    GIVE_UP = "give_up"  # the hub never verified the pending request
    LEAVE = "leave"  # the source is gone: unsubscribe or forget
    UNSUBSCRIBE = "unsubscribe"
    FORGET = "forget"


def retry_delay(config: PushConfig, failures: int) -> timedelta:
    return timedelta(seconds=min(config.retry_max_seconds, config.retry_seconds * 2 ** max(0, failures - 1)))


def lease_of(push: PushSubscription, config: PushConfig) -> int:
    return push.lease_seconds or config.lease_seconds


def due_at(push: PushSubscription, config: PushConfig) -> datetime:
    """When the maintenance job should next look at the subscription."""
    verify = timedelta(seconds=config.verify_within_seconds)
    match push.status:
        case PushStatus.DISCOVERED:
            return push.discovered_at or EPOCH
        case PushStatus.PENDING:
            return (push.requested_at or EPOCH) + verify
        case PushStatus.ACTIVE:
            verified = push.verified_at or EPOCH
            if push.retry_at is not None:  # a renewal failed: again then
                next_look = push.retry_at
            elif push.requested_at is not None and push.requested_at > verified:  # a renewal awaits verification
                next_look = push.requested_at + verify
            else:
                next_look = verified + timedelta(seconds=RENEW_AT * lease_of(push, config))
            return min(next_look, push.lease_end or next_look)
        case PushStatus.FALLBACK:
            return push.fallback_until or EPOCH
        case PushStatus.DENIED | PushStatus.FAILED:
            return push.retry_at or EPOCH
        case PushStatus.UNSUBSCRIBING:
            return push.requested_at + verify if push.requested_at is not None else EPOCH


def plan(push: PushSubscription, now: datetime, wanted: bool, config: PushConfig) -> Action:
    """What the maintenance job does now. ``wanted``: the source is configured, enabled and
    allowed to subscribe."""
    if push.status is PushStatus.UNSUBSCRIBING:
        if push.requested_at is None:
            return Action.UNSUBSCRIBE
        return Action.FORGET if now >= due_at(push, config) else Action.WAIT
    if not wanted:
        return Action.LEAVE
    if now < due_at(push, config):
        return Action.WAIT
    match push.status:
        case PushStatus.PENDING:
            return Action.GIVE_UP
        case PushStatus.ACTIVE:
            return Action.RESUBSCRIBE_EXPIRED if push.lease_end is None or now >= push.lease_end else Action.RENEW
        case _:  # discovered, failed, denied, fallback
            return Action.SUBSCRIBE


# -- what a poll decides -----------------------------------------------------------------------


def wants_subscription(push: PushSubscription | None, link: HubLink | None) -> bool:
    """A hub the source has no subscription to, or a new hub or topic for it."""
    if link is None:
        return False
    if push is None:
        return True
    return push.status is not PushStatus.UNSUBSCRIBING and (push.hub, push.topic) != (link.hub, link.topic)


def backup_seconds(push: PushSubscription | None, now: datetime, config: PushConfig) -> int | None:
    """The pull's interval while the hub is expected to push, else None (poll as usual)."""
    return config.backup_poll_seconds if push is not None and push.live(now) else None


def miss_reason(
    push: PushSubscription | None,
    new_articles: int,
    previous_success: datetime | None,
    previous_poll: datetime | None,
    now: datetime,
) -> str | None:
    """Why this pull's new articles mean push failed us, or None when they do not.

    Only when push was live over the whole gap since the last successful pull (else the new
    articles may predate it), no thin ping announced a change since the last pull (then this
    pull is its answer), and no delivery is so recent that its ingest may still be on the way.
    """
    if push is None or not push.live(now) or new_articles <= 0:
        return None
    if push.active_since is None or previous_success is None or push.active_since > previous_success:
        return None
    if push.last_thin_ping is not None and previous_poll is not None and push.last_thin_ping >= previous_poll:
        return None
    if push.last_delivery is not None and (now - push.last_delivery).total_seconds() < IN_FLIGHT_SECONDS:
        return None
    return f"a pull found {new_articles} new article(s) that push had not delivered"


# -- the changes ---------------------------------------------------------------------------------


def applied(push: PushSubscription | None, change: PushTransition | None) -> PushSubscription | None:
    """The subscription as ``change`` leaves it (for deciding on; the store applies it for real)."""
    if change is None:
        return push
    data = push.model_dump() if push is not None else {}
    if push is not None:
        data["secret"] = push.secret
    for name, value in change.fields.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    for name, by in change.incr.items():
        data[name] = int(data.get(name) or 0) + by
    return PushSubscription.model_validate(data)


def _with_due(push: PushSubscription | None, change: PushTransition, config: PushConfig) -> PushTransition:
    after = applied(push, change)
    if after is None:  # pragma: no cover - every change names status, hub and topic or keeps them
        return change
    return PushTransition(change.fields, change.incr, change.when_status, change.when_id, due_at(after, config))


def _fresh(**fields: FieldValue) -> dict[str, FieldValue]:
    """A new attempt: the old attempt's fields cleared, then ``fields``."""
    return {**dict.fromkeys(ATTEMPT_FIELDS), **fields}


def discovered(push: PushSubscription | None, link: HubLink, now: datetime, config: PushConfig) -> PushTransition:
    change = PushTransition(
        _fresh(status=PushStatus.DISCOVERED, hub=link.hub, topic=link.topic, discovered_at=now, failures=0)
    )
    return _with_due(push, change, config)


def requested(
    push: PushSubscription, now: datetime, config: PushConfig, *, callback_id: str, secret: str
) -> PushTransition:
    """A fresh attempt, recorded before the request is sent (a hub may verify before answering)."""
    change = PushTransition(
        _fresh(status=PushStatus.PENDING, id=callback_id, secret=secret, requested_at=now),
        when_status=frozenset({push.status}),
        when_id=push.id,
    )
    return _with_due(push, change, config)


def renewal_requested(push: PushSubscription, now: datetime, config: PushConfig) -> PushTransition:
    change = PushTransition(
        {"requested_at": now, "retry_at": None}, when_status=frozenset({PushStatus.ACTIVE}), when_id=push.id
    )
    return _with_due(push, change, config)


def request_failed(push: PushSubscription, reason: str, now: datetime, config: PushConfig) -> PushTransition:
    """The hub refused (or never answered) the request ``push`` records as sent."""
    retry_at = now + retry_delay(config, push.failures + 1)
    if push.status is PushStatus.ACTIVE:  # a renewal: the lease still runs, try again before it ends
        fields: dict[str, FieldValue] = {"error": reason, "retry_at": retry_at}
    else:
        fields = {"status": PushStatus.FAILED, "error": reason, "retry_at": retry_at}
    change = PushTransition(fields, {"failures": 1}, when_status=frozenset({push.status}), when_id=push.id)
    return _with_due(push, change, config)


def gave_up(push: PushSubscription, now: datetime, config: PushConfig) -> PushTransition:
    reason = f"the hub did not verify the request within {config.verify_within_seconds}s"
    return request_failed(push, reason, now, config)


def verified(push: PushSubscription, lease_seconds: int | None, now: datetime, config: PushConfig) -> PushTransition:
    """The hub verified our subscribe (the first time, or a renewal): the lease runs from now."""
    lease = lease_seconds or config.lease_seconds
    fields: dict[str, FieldValue] = {
        "status": PushStatus.FALLBACK if push.status is PushStatus.FALLBACK else PushStatus.ACTIVE,
        "verified_at": now,
        "active_since": push.active_since or now,
        "lease_seconds": lease,
        "lease_end": now + timedelta(seconds=lease),
        "retry_at": None,
        "error": None,
        "failures": 0,
    }
    change = PushTransition(fields, when_status=LIVE_AT_HUB, when_id=push.id)
    return _with_due(push, change, config)


def denied(push: PushSubscription, reason: str | None, now: datetime, config: PushConfig) -> PushTransition:
    fields: dict[str, FieldValue] = {
        "status": PushStatus.DENIED,
        "error": f"denied by the hub: {reason}" if reason else "denied by the hub",
        "retry_at": now + timedelta(seconds=config.retry_max_seconds),
    }
    change = PushTransition(fields, when_status=LIVE_AT_HUB, when_id=push.id)
    return _with_due(push, change, config)


def delivered(push: PushSubscription, ping: Ping, now: datetime) -> PushTransition:
    fields: dict[str, FieldValue] = {"last_delivery": now}
    if ping is Ping.THIN:
        fields["last_thin_ping"] = now
    return PushTransition(fields, {"deliveries": 1}, when_id=push.id)


def bad_signature(push: PushSubscription, now: datetime) -> PushTransition:
    return PushTransition({"last_bad_signature": now}, {"bad_signatures": 1}, when_id=push.id)


def missed(push: PushSubscription, reason: str, now: datetime, config: PushConfig) -> PushTransition:
    fields: dict[str, FieldValue] = {
        "status": PushStatus.FALLBACK,
        "fallback_until": now + timedelta(seconds=config.fallback_seconds),
        "fallback_reason": reason,
        "last_miss": now,
    }
    change = PushTransition(fields, {"misses": 1}, when_status=frozenset({PushStatus.ACTIVE}), when_id=push.id)
    return _with_due(push, change, config)


def unsubscribe_requested(push: PushSubscription, now: datetime, config: PushConfig) -> PushTransition:
    change = PushTransition({"requested_at": now}, when_status=frozenset({PushStatus.UNSUBSCRIBING}), when_id=push.id)
    return _with_due(push, change, config)


def looked(push: PushSubscription, config: PushConfig) -> PushTransition:
    """Nothing to do yet: only the next look is set (the claim had moved it)."""
    return PushTransition(when_status=frozenset({push.status}), when_id=push.id, due=due_at(push, config))
