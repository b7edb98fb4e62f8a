"""Generated cases for the statistics: requests over two years with their acceptance, sessions,
neutrality records, closing outcomes, court decisions and feedback, as the service would have
recorded them (with the case's running sums of its records and answers). Shared by the
statistics tests and ``bench/statistics_bench.py``."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import (
    Case,
    CaseStatus,
    Category,
    CloseReason,
    Feedback,
    NeutralityRecord,
    Outcome,
)

REGIONS = ("almaty_city", "astana", "shymkent", "karaganda", "turkistan", "zhambyl", "abai")
LANGUAGES = ("kk", "ru", "en")
# Outcomes and how often each comes, and where each leaves the case.
OUTCOMES = ((Outcome.full_agreement, 40), (Outcome.partial_agreement, 15),
            (Outcome.no_agreement, 25), (Outcome.withdrawn, 15), (Outcome.term_expired, 5))
ENDS = {Outcome.full_agreement: CaseStatus.signed, Outcome.partial_agreement: CaseStatus.signed,
        Outcome.no_agreement: CaseStatus.no_agreement, Outcome.withdrawn: CaseStatus.withdrawn,
        Outcome.term_expired: CaseStatus.no_agreement}
REASONS = {Outcome.full_agreement: CloseReason.settled,
           Outcome.partial_agreement: CloseReason.settled_in_part,
           Outcome.no_agreement: CloseReason.positions_apart,
           Outcome.withdrawn: CloseReason.party_withdrew,
           Outcome.term_expired: CloseReason.term_ran_out}


def _days(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(days=rng.uniform(low, high))


async def insert(session: AsyncSession, *, cases: int, now: datetime, requester_id: int,
                 mediators: dict[int, int | None], seed: int = 2011, prefix: str = "g",
                 regions: tuple[str, ...] = REGIONS, summary: str = "-") -> None:
    """``cases`` requests from the two years before ``now``; ``mediators`` maps each mediator's
    id to the organisation its requests are addressed to (or None)."""
    rng = random.Random(seed)
    ids = sorted(mediators)
    outcomes = [o for o, _w in OUTCOMES]
    weights = [w for _o, w in OUTCOMES]
    pending: list[tuple[Case, int, int]] = []  # case, sessions, answers
    for n in range(cases):
        created = now - _days(rng, 0, 730)
        case = Case(number=f"{prefix}-{n:06d}", category=rng.choice(list(Category)),
                    summary=summary, language=rng.choice(LANGUAGES), region=rng.choice(regions),
                    requester_id=requester_id, other_party_name="-", other_party_contact="-",
                    created_at=created, updated_at=created)
        sessions = answers = 0
        if rng.random() < 0.85:
            mediator = rng.choice(ids)
            case.chosen_mediator_id = mediator
            case.organisation_id = mediators[mediator] if rng.random() < 0.6 else None
            accepted = created + _days(rng, 0, 5)
            if accepted < now:
                # Its mediation contract concluded (a case left at "accepted" without one
                # would have it prepared at start-up: documents.contract.prepare_due).
                case.accepted_at, case.status = accepted, CaseStatus.consented
                first = accepted + _days(rng, 1, 20)
                if first < now and rng.random() < 0.8:
                    case.first_session_at, case.status = first, CaseStatus.in_session
                    sessions = rng.randint(1, 3)
                    closed = first + _days(rng, 1, 40)
                    if closed < now and rng.random() < 0.75:
                        outcome = rng.choices(outcomes, weights)[0]
                        case.outcome, case.close_reason = outcome, REASONS[outcome]
                        case.closed_at, case.status = closed, ENDS[outcome]
                        if case.status is CaseStatus.signed and rng.random() < 0.4:
                            case.status = rng.choice([CaseStatus.court_accepted,
                                                      CaseStatus.court_rejected])
                        answers = rng.randint(0, 2)
        elif rng.random() < 0.5:
            case.status = CaseStatus.declined
        session.add(case)
        pending.append((case, sessions, answers))
        if len(pending) == 2000 or n == cases - 1:
            await session.flush()
            for c, held, answered in pending:
                _extras(session, rng, c, held, answered)
            await session.commit()
            pending = []


def _extras(session: AsyncSession, rng: random.Random, case: Case, sessions: int,
            answers: int) -> None:
    assert case.first_session_at is not None or sessions == 0
    for i in range(sessions):
        assert case.first_session_at is not None
        began = case.first_session_at + timedelta(days=7 * i)
        a, b = rng.randint(0, 1800), rng.randint(0, 1800)
        session.add(NeutralityRecord(case_id=case.id or 0, started_at=began,
                                     ended_at=began + timedelta(hours=2), joint_seconds=3600,
                                     side_a_seconds=a, side_b_seconds=b))
        case.sessions_held += 1
        case.side_a_seconds += a
        case.side_b_seconds += b
    for _ in range(answers):
        assert case.closed_at is not None and case.chosen_mediator_id is not None
        neutral, clear = rng.randint(1, 5), rng.randint(1, 5)
        session.add(Feedback(case_id=case.id or 0, mediator_id=case.chosen_mediator_id,
                             neutral=neutral, clear=clear,
                             again=rng.choice(["yes", "maybe", "no"]),
                             on=date.fromordinal(case.closed_at.toordinal())))
        case.feedback_answers += 1
        case.feedback_neutral += neutral
        case.feedback_clear += clear
    session.add(case)
