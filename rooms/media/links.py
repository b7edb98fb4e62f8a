"""How well each viewer's link carries what the relay sends, and when to hold video back.

The relay reads what every viewer's browser reports about the streams it gets (RFC 3550
receiver reports: loss, and with the sender reports' timestamps the round trip; REMB: the
viewer's estimate of what it can receive). A link that cannot carry the video shows first as
a growing queue (the round trip rises above the link's own), then as loss. Then the relay
stops forwarding video to that viewer, audio first and always, and tells the page. After a
hold it tries video again once the queue has drained; a try that fails doubles the hold (up
to ``MAX_HOLD``), a link that keeps video for ``STEADY`` seconds starts over from ``FIRST_HOLD``.

Without bandwidth probing (padding) the relay cannot measure a link's spare capacity while
video is held back, so it tries: a try on a link still too weak costs some seconds of audio
delay, not audio loss, because the queue is drained before the next try.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

#: Round trip above the link's own (the lowest seen lately) that means a queue (seconds).
QUEUE_DELAY = 0.35
#: ... and below which the queue counts as drained, for a new try.
DRAINED_DELAY = 0.15
#: Share of packets lost, over the reports of the last ``WINDOW`` seconds, that means congestion.
LOSS = 0.10
#: A viewer's bitrate estimate below this share of the video it is sent means congestion
#: (ignored for ``SETTLE`` seconds after video starts: estimates lag a link that recovered).
REMB_SHARE = 0.5
WINDOW = 2.0
SETTLE = 5.0
FIRST_HOLD = 2.0
MAX_HOLD = 4.0
STEADY = 10.0
#: How long the link's own round trip is remembered (seconds).
BASE_RTT_MEMORY = 30.0


@dataclass
class LinkMonitor:
    """One viewer's link: fed with its reports, asked ``decide()`` now and then."""

    video_paused: bool = False
    hold: float = FIRST_HOLD
    changed_at: float = field(default_factory=time.monotonic)
    reason: str = ""
    _losses: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    _rtts: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    _rembs: collections.deque[tuple[float, int, frozenset[int]]] = field(
        default_factory=collections.deque)

    def report(self, fraction_lost: float, rtt: float | None, *, now: float | None = None) -> None:
        """A receiver report block: the share of packets lost since the last, and the round
        trip worked out from it (None when the viewer has no sender report to refer to)."""
        now = time.monotonic() if now is None else now
        self._losses.append((now, fraction_lost))
        if rtt is not None and 0 <= rtt < 60:
            self._rtts.append((now, rtt))

    def estimate(self, bitrate: int, ssrcs: list[int], *, now: float | None = None) -> None:
        """The viewer's estimate of the bitrate it can receive (REMB) of the streams ``ssrcs``
        (Chromium: all of them in one; aiortc: one per stream)."""
        now = time.monotonic() if now is None else now
        self._rembs.append((now, bitrate, frozenset(ssrcs)))

    def decide(self, video_rates: dict[int, float], *, now: float | None = None) -> bool | None:
        """Whether video should now be held back (True) or sent again (False); None: no change.

        ``video_rates``: the bits per second of video the viewer was sent lately, by SSRC.
        """
        now = time.monotonic() if now is None else now
        self._forget(now)
        if not self.video_paused:
            congested = self._congested(video_rates, now)
            if congested:
                tried = now - self.changed_at < STEADY
                self.hold = min(MAX_HOLD, self.hold * 2) if tried else FIRST_HOLD
                self.video_paused, self.changed_at, self.reason = True, now, congested
                return True
            return None
        if now - self.changed_at < self.hold or not self._drained(now):
            return None
        self.video_paused, self.changed_at, self.reason = False, now, ""
        return False

    def _congested(self, video_rates: dict[int, float], now: float) -> str:
        recent = [loss for at, loss in self._losses if now - at <= WINDOW]
        if recent and sum(recent) / len(recent) > LOSS:
            return "loss"
        queue = self._queue_delay(now)
        if queue is not None and queue > QUEUE_DELAY:
            return "delay"
        if now - self.changed_at > SETTLE:
            # Two estimates in a row, each far below what the streams it names were sent.
            low = [
                bitrate < REMB_SHARE * sent
                for at, bitrate, ssrcs in self._rembs
                if now - at <= WINDOW and at - self.changed_at > SETTLE
                and (sent := sum(video_rates.get(ssrc, 0.0) for ssrc in ssrcs)) > 0
            ]
            if len(low) >= 2 and all(low[-2:]):
                return "estimate"
        return ""

    def _drained(self, now: float) -> bool:
        queue = self._queue_delay(now)
        recent = [loss for at, loss in self._losses if now - at <= WINDOW]
        lossy = bool(recent) and sum(recent) / len(recent) > LOSS
        return (queue is None or queue < DRAINED_DELAY) and not lossy

    def _queue_delay(self, now: float) -> float | None:
        """The newest round trip less the lowest one remembered."""
        if not self._rtts:
            return None
        newest = self._rtts[-1]
        if now - newest[0] > WINDOW:
            return None
        return newest[1] - min(rtt for _, rtt in self._rtts)

    def _forget(self, now: float) -> None:
        for queue, keep in ((self._losses, WINDOW), (self._rembs, WINDOW),
                            (self._rtts, BASE_RTT_MEMORY)):
            while queue and now - queue[0][0] > keep:
                queue.popleft()
