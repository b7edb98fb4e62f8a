"""When the relay holds video back from a viewer, and when it tries again (rooms/media/links.py),
on made-up report sequences; the real weak link is in test_weak_link.py."""

from __future__ import annotations

from rooms.media.links import FIRST_HOLD, MAX_HOLD, LinkMonitor


def steady(link: LinkMonitor, start: float, end: float, *, rtt: float, loss: float = 0.0,
           rates: dict[int, float] | None = None) -> list[tuple[float, bool]]:
    """Reports twice a second from ``start`` to ``end``; the decisions taken meanwhile."""
    decisions = []
    t = start
    while t < end:
        link.report(loss, rtt, now=t)
        decision = link.decide(rates or {1: 500_000.0}, now=t)
        if decision is not None:
            decisions.append((t, decision))
        t += 0.5
    return decisions


def test_a_good_link_keeps_its_video() -> None:
    link = LinkMonitor(changed_at=0.0)
    assert steady(link, 0, 60, rtt=0.02, loss=0.01) == []


def test_a_growing_queue_holds_video_back_and_a_drained_one_brings_it_back() -> None:
    link = LinkMonitor(changed_at=0.0)
    assert steady(link, 0, 5, rtt=0.2) == []  # the link's own round trip: no queue
    decisions = steady(link, 5, 6, rtt=0.8)
    assert decisions == [(5.0, True)] and link.reason == "delay"
    # Still queued: no try, however long.
    assert steady(link, 6, 15, rtt=0.7) == []
    back = steady(link, 15, 20, rtt=0.25)
    assert back and back[0] == (15.0, False)


def test_loss_holds_video_back_and_failed_tries_wait_longer_up_to_a_limit() -> None:
    link = LinkMonitor(changed_at=0.0)
    decisions = steady(link, 0, 40, rtt=0.1, loss=0.3)  # lossy whatever is sent
    pauses = [t for t, paused in decisions if paused]
    assert pauses and link.reason == "loss"
    assert link.hold == MAX_HOLD > FIRST_HOLD
    resumes = [t for t, paused in decisions if not paused]
    assert resumes == []  # loss goes on, so the queue never counts as drained


def test_an_estimate_far_below_what_is_sent_holds_video_back_after_settling() -> None:
    link = LinkMonitor(changed_at=0.0)
    link.report(0.0, 0.01, now=1.0)
    link.estimate(100_000, [1], now=1.0)
    link.estimate(100_000, [1], now=1.5)
    assert link.decide({1: 500_000.0}, now=1.6) is None  # estimates lag at the start
    link.estimate(100_000, [1], now=6.0)
    link.estimate(100_000, [1, 2], now=6.5)
    assert link.decide({1: 500_000.0, 2: 100.0}, now=6.6) is True
    assert link.reason == "estimate"
    # An estimate naming streams that together get less than twice it is no congestion.
    other = LinkMonitor(changed_at=0.0)
    other.estimate(300_000, [1], now=6.0)
    other.estimate(300_000, [1], now=6.5)
    assert other.decide({1: 500_000.0}, now=6.6) is None
