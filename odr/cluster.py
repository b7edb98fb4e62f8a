"""What crosses processes when ``ODR_REDIS_URL`` is set: who owns each live room and draft, the
state a room's next owner starts from, and the events every process must hear.

LiveKit's scheme: each room lives in one process, recorded in Redis under a lease that its owner
renews; a connection that reaches another process is relayed to the owner (``odr.forwarding``),
so the owner alone holds the room's state and enforces the caucuses exactly as with one process.
A draft is owned the same way, so its updates are stored once, in one order, by one writer.

An owner that dies stops renewing: its lease runs out (``owner_lease_seconds``), or sooner a
process that finds its address refusing connections deletes it, and the next connection makes its
own process the owner. While Redis is unreachable a process keeps serving the rooms it owns (no
one else can take them), refuses to make new ones, and says so in ``/healthz``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from odr.settings import Settings

log = logging.getLogger("odr.cluster")

# KEYS[1]: the lease. ARGV: this process, lease in ms. Returns the owner (maybe this process).
CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return owner
"""
# KEYS: leases this process holds. Renews each, takes back any that vanished (Redis restarted
# empty); returns 0 for each one another process holds now.
RENEW = """
local kept = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2]); kept[i] = 1
  elseif not owner then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2]); kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
"""
# Delete KEYS[1] if it still holds ARGV[1] (compare-and-delete).
DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ClusterDown(Exception):
    """Redis cannot be reached, so nobody can tell who owns what."""


@dataclass(frozen=True)
class Owner:
    """A process holding a lease: its address and the token of its run."""

    value: str

    @property
    def url(self) -> str:
        return self.value.split(" ", 1)[0]


@dataclass
class Holder:
    """What a runtime tells the cluster: which of its things it holds, and what to do with one
    whose lease another process now has (close its connections, so they come back there)."""

    held: Callable[[], Iterable[int]]
    lost: Callable[[int], Coroutine[Any, Any, None]]


EventListener = Callable[[dict[str, Any]], Awaitable[None]]


class Cluster:
    def __init__(self, settings: Settings) -> None:
        self.redis = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2,
            decode_responses=True)
        # The token tells this run from an earlier one at the same address.
        self.me = Owner(f"{settings.node_url.rstrip('/')} {secrets.token_hex(6)}")
        self.prefix = settings.redis_prefix
        self.lease_ms = int(settings.owner_lease_seconds * 1000)
        self.holders: dict[str, Holder] = {}
        self.listeners: list[EventListener] = []
        self.up = False
        self._claim = self.redis.register_script(CLAIM)
        self._renew = self.redis.register_script(RENEW)
        self._delete_if = self.redis.register_script(DELETE_IF)
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"

    def _lease(self, kind: str, ident: int) -> str:
        return f"{self.prefix}:owner:{kind}:{ident}"

    def _state(self, kind: str, ident: int) -> str:
        return f"{self.prefix}:state:{kind}:{ident}"

    async def start(self) -> None:
        try:
            await self.redis.ping()
            self.up = True
        except (RedisError, OSError) as exc:
            log.warning("Redis is unreachable at start-up (%s); retrying", exc)
        self._tasks = [asyncio.create_task(self._renew_loop()),
                       asyncio.create_task(self._listen_loop())]
        # Events published from now on reach this process too.
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)
        except TimeoutError:
            log.warning("not yet subscribed to %s", self.events_channel)

    async def close(self) -> None:
        """Give up every lease, so that clients reconnecting elsewhere are served at once."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for kind, holder in self.holders.items():
            for ident in list(holder.held()):
                try:
                    await self._delete_if(keys=[self._lease(kind, ident)], args=[self.me.value])
                except (RedisError, OSError):
                    break
        await self.redis.aclose()

    # --- ownership ------------------------------------------------------------------------

    async def claim(self, kind: str, ident: int) -> Owner:
        """The owner of a room or draft: this process if nobody else holds it."""
        try:
            value = await self._claim(keys=[self._lease(kind, ident)],
                                      args=[self.me.value, self.lease_ms])
        except (RedisError, OSError) as exc:
            self.up = False
            raise ClusterDown(str(exc)) from exc
        self.up = True
        return Owner(str(value))

    async def evict(self, kind: str, ident: int, dead: Owner) -> None:
        """``dead``'s address refused a connection: its lease goes now, not when it runs out."""
        log.warning("%s %s: its owner %s refuses connections; taking it over", kind, ident,
                    dead.url)
        try:
            await self._delete_if(keys=[self._lease(kind, ident)], args=[dead.value])
        except (RedisError, OSError) as exc:
            self.up = False
            raise ClusterDown(str(exc)) from exc

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            await self.renew()

    async def renew(self) -> None:
        """Extend this process's leases; close what another process now owns."""
        held = [(kind, ident) for kind, holder in self.holders.items()
                for ident in holder.held()]
        try:
            if not held:
                await self.redis.ping()
                self.up = True
                return
            kept = await self._renew(keys=[self._lease(k, i) for k, i in held],
                                     args=[self.me.value, self.lease_ms])
        except (RedisError, OSError) as exc:
            if self.up:
                log.warning("Redis is unreachable (%s); serving only the rooms held here", exc)
            self.up = False
            return
        if not self.up:
            log.info("Redis is reachable again")
        self.up = True
        for (kind, ident), ok in zip(held, kept, strict=True):
            if not ok:
                log.warning("%s %s is owned by another process now; closing it here",
                            kind, ident)
                self.spawn(self.holders[kind].lost(ident))

    # --- the state a room's next owner starts from ----------------------------------------

    async def save_state(self, kind: str, ident: int, data: str, *, ttl_seconds: float) -> None:
        try:
            await self.redis.set(self._state(kind, ident), data, px=int(ttl_seconds * 1000))
        except (RedisError, OSError) as exc:
            log.warning("%s %s: state not saved (%s)", kind, ident, exc)

    async def load_state(self, kind: str, ident: int) -> str | None:
        try:
            value = await self.redis.get(self._state(kind, ident))
        except (RedisError, OSError) as exc:
            raise ClusterDown(str(exc)) from exc
        return None if value is None else str(value)

    # --- events to every process ----------------------------------------------------------

    async def publish(self, event: dict[str, Any]) -> bool:
        """Send an event to every process, this one included; False if Redis is down."""
        try:
            await self.redis.publish(self.events_channel, json.dumps(event))
            return True
        except (RedisError, OSError) as exc:
            log.warning("event %s not published (%s)", event.get("kind"), exc)
            return False

    async def _listen_loop(self) -> None:
        delay = 0.2
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.events_channel)
                self._subscribed.set()
                delay = 0.2
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.spawn(self._deliver(json.loads(message["data"])))
            except (RedisError, OSError) as exc:
                self.up = False
                log.warning("event subscription lost (%s); retrying", exc)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _deliver(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                await listener(event)
            except Exception:
                log.exception("event %s failed here", event.get("kind"))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
