"""A source's state as Redis stores it, and the states a process wrote, kept to read back.

``source:{id}:state`` holds :class:`~service.models.SourceState` as JSON, without its ``push``
(stored under its own key) and without fields at their defaults. :class:`WrittenStates` lets a
poll take back the state its process wrote at the poll before instead of validating that JSON
again (:mod:`service.store.source_state` reads and writes through both).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from service.models import SourceState

log = logging.getLogger(__name__)


def state_json(state: SourceState) -> str:
    """The stored form: the subscription lives under its own key (:mod:`service.store.push_state`),
    and fields at their defaults are left out (read back as those defaults): a source polled
    without trouble stores about half the bytes, and sends them on every poll."""
    return state.model_dump_json(exclude_defaults=True)  # (without ``push``: see its field)


def read_state(source_id: str, raw: bytes | str | None) -> SourceState:
    """A stored state this version cannot read is logged and started afresh, not a stuck source."""
    if not raw:
        return SourceState()
    try:
        return SourceState.model_validate_json(raw)
    except ValidationError as exc:
        log.error("%s: unreadable source state, starting afresh: %s", source_id, exc)
        return SourceState()


WRITTEN_STATES = 1 << 14
"""Sources whose last written state a process keeps (:class:`WrittenStates`): about 2.5 KB each,
40 MB in all. A worker polling more sources than this in turn finds none of them (each is pushed
out before its next poll) and reads every state as before."""


class WrittenStates:
    """The states this process last wrote, with their stored bytes: a poll's first call reads the
    state back, and when it reads the very bytes written, it takes the state written instead of
    validating the JSON again (4 of a 304 poll's ~145 µs). Keyed by bytes, so a state written
    since by another worker or an operator is read as before.

    Shared by the polls that read it: a state is never changed in place (decisions copy it).
    """

    def __init__(self, size: int = WRITTEN_STATES):
        self._size = size
        self._states: dict[str, tuple[bytes, SourceState]] = {}

    def wrote(self, source_id: str, stored: str, state: SourceState) -> None:
        states = self._states
        states.pop(source_id, None)
        if state.push is not None:  # stored without it: read back, it is None until its own key is read
            return
        if len(states) >= self._size:
            del states[next(iter(states))]  # the least recently written
        states[source_id] = (stored.encode(), state)

    def read(self, source_id: str, raw: bytes | None) -> SourceState:
        known = self._states.get(source_id)
        if known is not None and raw == known[0]:
            return known[1]
        return read_state(source_id, raw)
