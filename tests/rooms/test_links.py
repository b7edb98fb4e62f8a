"""When the relay holds video back from a viewer, probes its link and sends video again
(rooms/media/links.py), on made-up report sequences; the real weak link is test_weak_link.py."""

from __future__ import annotations

from rooms.media.links import HOLD, PROBE_TIMEOUT, LinkMonitor

RATES = {1: 500_000.0}


def reports(link: LinkMonitor, start: float, end: float, *, rtt: float, loss: float = 0.0,
            sent_after: float = 0.0) -> list[tuple[float, str]]:
    """Reports twice a second from ``start`` to ``end``, each on a sender report sent
    ``sent_after`` seconds after the moment, or ``rtt`` before; the actions taken."""
    actions: list[tuple[float, str]] = []
    t = start
    while t < end:
        link.report(loss, rtt, t + sent_after if sent_after else t - rtt, now=t)
        action = link.decide(RATES, now=t)
        if action is not None:
            actions.append((t, action))
        t += 0.5
    return actions


def test_a_good_link_keeps_its_video() -> None:
    link = LinkMonitor(changed_at=0.0)
    assert reports(link, 0, 60, rtt=0.02, loss=0.01) == []


def test_a_growing_queue_holds_video_back_and_a_probe_that_queues_keeps_it_held() -> None:
    link = LinkMonitor(changed_at=0.0)
    assert reports(link, 0, 5, rtt=0.2) == []  # the link's own round trip: no queue
    assert reports(link, 5, 5.5, rtt=0.8) == [(5.0, "pause")]
    assert link.reason == "delay" and link.video_paused and link.video_rate == 500_000
    # Still queued: no probe, however long.
    assert reports(link, 5.5, 15, rtt=0.7) == []
    # Drained: a probe; the report sent right behind it comes back late: still held.
    actions = reports(link, 15, 15.4, rtt=0.2)
    assert actions == [(15.0, "probe")]
    link.report(0.0, 1.2, sent_at=15.02, now=16.5)
    assert link.decide(RATES, now=16.6) == "hold" and link.video_paused


def test_a_probe_that_does_not_queue_sends_video_again() -> None:
    link = LinkMonitor(changed_at=0.0)
    reports(link, 0, 2, rtt=0.1)
    link.report(0.5, 0.1, now=2.0)  # half the packets lost
    assert link.decide(RATES, now=2.0) == "pause" and link.reason == "loss"
    assert reports(link, 2.5, 2.5 + HOLD, rtt=0.1)[-1][1] == "probe"
    probed = link.changed_at
    # A report on an older sender report says nothing of the probe ...
    link.report(0.0, 0.1, sent_at=probed - 0.3, now=probed + 0.4)
    assert link.decide(RATES, now=probed + 0.4) is None
    # ... the answer to the one behind it does.
    link.report(0.0, 0.11, sent_at=probed + 0.01, now=probed + 0.6)
    assert link.decide(RATES, now=probed + 0.6) == "resume" and not link.video_paused


def test_an_unanswered_probe_counts_as_failed() -> None:
    link = LinkMonitor(changed_at=0.0)
    link.report(0.5, 0.1, now=1.0)
    assert link.decide(RATES, now=1.0) == "pause"
    assert link.decide(RATES, now=1.0 + HOLD + 2.1) == "probe"  # loss reports aged out
    assert link.decide(RATES, now=1.0 + HOLD + 2.2 + PROBE_TIMEOUT) == "hold"


def test_an_estimate_far_below_what_is_sent_holds_video_back_after_settling() -> None:
    link = LinkMonitor(changed_at=0.0)
    link.report(0.0, 0.01, now=1.0)
    link.estimate(100_000, [1], now=1.0)
    link.estimate(100_000, [1], now=1.5)
    assert link.decide(RATES, now=1.6) is None  # estimates lag at the start
    link.estimate(100_000, [1], now=6.0)
    link.estimate(100_000, [1, 2], now=6.5)
    assert link.decide({1: 500_000.0, 2: 100.0}, now=6.6) == "pause"
    assert link.reason == "estimate"
    # An estimate of at least half of what its streams get is no congestion.
    other = LinkMonitor(changed_at=0.0)
    other.estimate(300_000, [1], now=6.0)
    other.estimate(300_000, [1], now=6.5)
    assert other.decide(RATES, now=6.6) is None


def test_the_answer_to_a_later_sender_report_decides_the_probe_too() -> None:
    """aiortc's own sender report can go out just after the probe's: the viewer answers that
    one only, and it still shows whether the burst queued."""
    link = LinkMonitor(changed_at=0.0)
    reports(link, 0, 2, rtt=0.1)
    link.report(0.5, 0.1, now=2.0)
    assert link.decide(RATES, now=2.0) == "pause"
    assert reports(link, 2.5, 2.5 + HOLD, rtt=0.1)[-1][1] == "probe"
    probed = link.changed_at
    link.report(0.0, 0.9, sent_at=probed + 0.3, now=probed + 1.2)  # queued behind the burst
    assert link.decide(RATES, now=probed + 1.2) == "hold"
    later = probed + 1.3 + HOLD
    link.report(0.0, 0.1, sent_at=later - 0.1, now=later)  # drained again
    assert link.decide(RATES, now=later) == "probe"
    probed = link.changed_at
    link.report(0.0, 0.12, sent_at=probed + 0.4, now=probed + 0.6)
    assert link.decide(RATES, now=probed + 0.6) == "resume"
