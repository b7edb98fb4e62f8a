"""How well each viewer's link carries what the relay sends, and when to hold video back.

The relay reads what every viewer's browser reports about the streams it gets (RFC 3550
receiver reports: loss, and with the sender reports' timestamps the round trip; REMB: the
viewer's estimate of what it can receive). A link that cannot carry the video shows first as
a growing queue (the round trip rises above the link's own), then as loss. Then the relay
stops forwarding video to that viewer, audio first and always, and tells the page.

While video is held back, the sound alone says nothing of the link's spare capacity, so after
a hold (and once the queue drained) the relay *probes*: it sends the viewer a quarter second's
worth of the video's rate as retransmissions (RTX) of a packet the viewer already has, as
libwebrtc probes with padding, and right behind it a sender report. The burst fits in a link's
queue, so on a link still too weak it costs the sound a moment of delay, not loss. The
viewer's answer to that report shows how long it queued behind the burst: no queue, and
video is sent again.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Literal

#: Round trip above the link's own (the lowest seen lately) that means a queue (seconds).
QUEUE_DELAY = 0.35
#: ... and below which the queue counts as drained (before a probe, and after it).
DRAINED_DELAY = 0.15
#: Share of packets lost, over the reports of the last ``WINDOW`` seconds, that means congestion.
LOSS = 0.10
#: A viewer's bitrate estimate below this share of the video it is sent means congestion
#: (ignored for ``SETTLE`` seconds after video starts: estimates lag a link that recovered).
REMB_SHARE = 0.5
WINDOW = 2.0
SETTLE = 5.0
#: Seconds between holding video back (or a failed probe) and the next probe.
HOLD = 1.0
PROBE_SECONDS = 0.25
#: Sender reports sent this soon after a probe began show whether it queued (seconds). Not
#: only the one the relay sends right behind the burst: aiortc sends its own every second or
#: so, and the viewer answers only the newest it got, so the probe's own report is often
#: never answered. Any sent within twice the burst's length still finds a burst the link
#: cannot carry in its queue (a quarter second of the video's rate drains in well under that
#: on a link that carries it, and in seconds on one that does not).
PROBE_ANSWER = 2 * PROBE_SECONDS
#: A probe that no report answers within this many seconds counts as failed.
PROBE_TIMEOUT = 2.0
#: How long the link's own round trip is remembered (seconds).
BASE_RTT_MEMORY = 30.0

Action = Literal["pause", "probe", "resume", "hold"]


@dataclass
class LinkMonitor:
    """One viewer's link: fed with its reports, asked ``decide()`` now and then."""

    state: Literal["sending", "held", "probing"] = "sending"
    changed_at: float = field(default_factory=time.monotonic)
    reason: str = ""
    #: The bits per second of video the viewer was sent when it was held back: what a
    #: probe has to show the link carries.
    video_rate: float = 0.0
    _losses: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    # (when the report came, round trip, when the sender report it answers was sent)
    _rtts: collections.deque[tuple[float, float, float]] = field(
        default_factory=collections.deque)
    _rembs: collections.deque[tuple[float, int, frozenset[int]]] = field(
        default_factory=collections.deque)
    _rates: collections.deque[tuple[float, float]] = field(
        default_factory=collections.deque)

    @property
    def video_paused(self) -> bool:
        return self.state != "sending"

    def report(self, fraction_lost: float, rtt: float | None, sent_at: float | None = None,
               *, now: float | None = None) -> None:
        """A receiver report block: the share of packets lost since the last, and the round
        trip worked out from it with when the sender report it answers was sent (None when
        the viewer has no sender report to refer to)."""
        now = time.monotonic() if now is None else now
        self._losses.append((now, fraction_lost))
        if rtt is not None and 0 <= rtt < 60:
            self._rtts.append((now, rtt, now - rtt if sent_at is None else sent_at))

    def estimate(self, bitrate: int, ssrcs: list[int], *, now: float | None = None) -> None:
        """The viewer's estimate of the bitrate it can receive (REMB) of the streams ``ssrcs``
        (Chromium: all of them in one; aiortc: one per stream)."""
        now = time.monotonic() if now is None else now
        self._rembs.append((now, bitrate, frozenset(ssrcs)))

    def decide(self, video_rates: dict[int, float], *, now: float | None = None) -> Action | None:
        """What to do now: hold video back (``pause``), send a probe, send video again
        (``resume``), keep holding after a failed probe (``hold``); None: nothing.

        ``video_rates``: the bits per second of video the viewer was sent lately, by SSRC.
        """
        now = time.monotonic() if now is None else now
        self._forget(now)
        if self.state == "sending":
            self._rates.append((now, sum(video_rates.values())))
            congested = self._congested(video_rates, now)
            if not congested:
                return None
            rates = [rate for _, rate in self._rates]
            self.video_rate = sum(rates) / len(rates)
            self._change("held", now, congested)
            return "pause"
        if self.state == "held":
            if now - self.changed_at < HOLD or not self._drained(now, since=0.0):
                return None
            self._change("probing", now, self.reason)
            return "probe"
        # The first answer to a sender report sent after the probe (the relay sends one
        # right behind it): it queued behind the probe on a link that cannot carry it.
        answers = [(sent, at, rtt) for at, rtt, sent in self._rtts
                   if self.changed_at <= sent <= self.changed_at + PROBE_ANSWER]
        if answers:
            _, _, rtt = min(answers)
            queued = rtt - min(r for _, r, _ in self._rtts)
            if queued < DRAINED_DELAY:
                self._change("sending", now, "")
                return "resume"
            self._change("held", now, "probe")
            return "hold"
        if now - self.changed_at > PROBE_TIMEOUT:
            self._change("held", now, "probe unanswered")
            return "hold"
        return None

    def resume(self, *, now: float | None = None) -> None:
        """Send video again without a probe (the viewer's streams cannot carry one)."""
        self._change("sending", time.monotonic() if now is None else now, "")

    def _change(self, state: Literal["sending", "held", "probing"], now: float,
                reason: str) -> None:
        self.state, self.changed_at, self.reason = state, now, reason
        if state == "sending":
            self._rates.clear()

    def _congested(self, video_rates: dict[int, float], now: float) -> str:
        # Only what was reported since video was sent again counts.
        recent = [loss for at, loss in self._losses if at > self.changed_at]
        if recent and sum(recent) / len(recent) > LOSS:
            return "loss"
        queue = self._queue_delay(now, since=self.changed_at)
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

    def _drained(self, now: float, since: float) -> bool:
        queue = self._queue_delay(now, since)
        recent = [loss for at, loss in self._losses if now - at <= WINDOW]
        lossy = bool(recent) and sum(recent) / len(recent) > LOSS
        return (queue is None or queue < DRAINED_DELAY) and not lossy

    def _queue_delay(self, now: float, since: float = 0.0) -> float | None:
        """The round trip of the newest report on a sender report sent after ``since``, less
        the lowest round trip remembered; None without a recent one."""
        newest = next((r for r in reversed(self._rtts) if r[2] >= since), None)
        if newest is None or now - newest[0] > WINDOW:
            return None
        return newest[1] - min(rtt for _, rtt, _ in self._rtts)

    def _forget(self, now: float) -> None:
        for queue, keep in ((self._losses, WINDOW), (self._rembs, WINDOW),
                            (self._rates, WINDOW), (self._rtts, BASE_RTT_MEMORY)):
            while queue and now - queue[0][0] > keep:
                queue.popleft()
