"""The end of a poll as one atomic Redis call: everything the poll decided, written at once.

A poll collects its intents here (free the host slots, save the state, move the source in the
schedule, pause the host, let go of the lease) and :func:`PollEnd.commit` sends them as one
Lua call: one round trip, and no half-finished poll for another worker to see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from service import keys
from workers.fetch.host_budget import HostBudget, Slot

_END_POLL = """
for i = 6, #KEYS do redis.call('ZREM', KEYS[i], ARGV[i + 2]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
local mode = ARGV[3]
if mode == 'set' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
elseif mode == 'claim' then
  if redis.call('ZSCORE', KEYS[3], ARGV[4]) == ARGV[6] then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
elseif mode == 'disable' then
  redis.call('SADD', KEYS[4], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
elseif mode == 'enable' then
  redis.call('SREM', KEYS[4], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
local pause = tonumber(ARGV[7])
if pause > 0 and redis.call('PTTL', KEYS[5]) < pause then redis.call('SET', KEYS[5], '1', 'PX', pause) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

ScheduleMode = Literal["none", "set", "claim", "disable", "enable"]


@dataclass
class PollEnd:
    source_id: str
    lease_token: str
    slots: list[Slot] = field(default_factory=list)
    state_json: str = ""
    mode: ScheduleMode = "none"
    at: float = 0.0
    claim: str = ""
    pause_host: str = ""
    pause_ms: int = 0

    def reschedule(self, at: datetime, claim: str | None) -> None:
        """Next due time; with a claim, only while that claim still holds."""
        self.mode, self.at, self.claim = (
            ("set", at.timestamp(), "") if claim is None else ("claim", at.timestamp(), claim)
        )

    def disable(self) -> None:
        self.mode = "disable"

    def enable(self, at: datetime) -> None:
        self.mode, self.at = "enable", at.timestamp()

    def pause(self, host: str, seconds: float) -> None:
        self.pause_host, self.pause_ms = host, max(self.pause_ms, int(math.ceil(seconds * 1000)))

    async def commit(self, budget: HostBudget) -> None:
        pause_key = keys.host_budget(self.pause_host)[2] if self.pause_host else keys.PREFIX + "host::pause"
        script_keys = [
            keys.poll_lease(self.source_id),
            keys.source_state(self.source_id),
            keys.SCHEDULE,
            keys.DISABLED,
            pause_key,
            *(keys.host_budget(slot.host)[0] for slot in self.slots),
        ]
        args = [self.lease_token, self.state_json, self.mode, self.source_id, repr(self.at), self.claim, self.pause_ms]
        await budget.run(_END_POLL, script_keys, [*args, *(slot.token for slot in self.slots)])
