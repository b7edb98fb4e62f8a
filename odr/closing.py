"""Closing a case with an outcome, and the parties' anonymous feedback afterwards.

The mediator closes a case once: with a signed agreement (full or partial), without one, after
a party withdrew, or when the term ran out. Closing moves the status where the outcome says (a
case already ended by a party's withdrawal or the "end without agreement" button only gets its
outcome recorded) and asks each party for feedback: four questions, answered once, kept without
the name of who answered (``FeedbackRequest`` knows who was asked and whether they answered,
``Feedback`` holds the answers and nobody's id).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import access
from odr.access import SESSION_STATES, Action, Subject
from odr.errors import N_, Conflict, NotFound, Refused
from odr.models import (
    Case,
    CaseRole,
    CaseStatus,
    Feedback,
    FeedbackRequest,
    Outcome,
    Participant,
    User,
    utcnow,
)
from odr.schemas import CaseClose, FeedbackIn, FeedbackSummaryPublic
from odr.services import Services
from odr.vocab import OUTCOME_LABELS

SIGNED = frozenset({CaseStatus.signed, CaseStatus.filed, CaseStatus.court_accepted,
                    CaseStatus.court_rejected})
# Where each outcome may be recorded from, and the status it moves an open case to (None:
# the status stays, the case having ended there already).
FROM: dict[Outcome, dict[CaseStatus, CaseStatus | None]] = {
    Outcome.full_agreement: dict.fromkeys(SIGNED),
    Outcome.partial_agreement: dict.fromkeys(SIGNED),
    Outcome.no_agreement: dict.fromkeys(SESSION_STATES, CaseStatus.no_agreement)
    | {CaseStatus.no_agreement: None},
    Outcome.withdrawn: dict.fromkeys(SESSION_STATES | {CaseStatus.accepted},
                                     CaseStatus.withdrawn) | {CaseStatus.withdrawn: None},
    Outcome.term_expired: dict.fromkeys(SESSION_STATES, CaseStatus.no_agreement)
    | {CaseStatus.no_agreement: None},
}


async def close(case: Case, data: CaseClose, *, subject: Subject, svc: Services,
                session: AsyncSession) -> None:
    access.check(Action.close_case, subject, case)
    moves = FROM[data.outcome]
    if case.status not in moves:
        raise Conflict(N_("A case in this state cannot be closed with this outcome."),
                       field="outcome")
    if data.outcome == Outcome.term_expired and case.status in SESSION_STATES and not (
            access.term_expired(case)):
        raise Conflict(N_("The term of mediation has not expired."), field="outcome")
    target = moves[case.status]
    if target is not None:
        await svc.cases.transition(case, target, actor=subject.user, session=session,
                                   reason=data.note)
    case.outcome, case.close_reason, case.closed_at = data.outcome, data.reason, utcnow()
    session.add(case)
    await svc.cases.record(session, case, "closed", actor=subject.user,
                           detail=f"{data.outcome.value}:{data.reason.value}",
                           audit_detail={"note": data.note})
    parties = (await session.exec(select(Participant, User).join(
        User, col(User.id) == col(Participant.user_id)).where(
        Participant.case_id == case.id, Participant.role == CaseRole.party,
        col(Participant.removed_at).is_(None)).order_by(col(Participant.id)))).all()
    link = f"{svc.settings.public_url.rstrip('/')}/cases/{case.id}/feedback"
    for participant, user in parties:
        session.add(FeedbackRequest(case_id=case.id or 0, user_id=participant.user_id))
        tr = svc.catalogues.get(user.language or case.language)
        svc.mailer.queue(
            session, user.email,
            tr.gettext("Case %(number)s is closed: how did the mediation go?",
                       number=case.number),
            tr.gettext("The mediator has closed case %(number)s: %(outcome)s. Four short "
                       "questions help the mediation centre do better; your answers reach "
                       "the mediator without your name: %(link)s", number=case.number,
                       outcome=tr.gettext(OUTCOME_LABELS[data.outcome.value]), link=link))


async def feedback_due(case: Case, user: User | None, *, session: AsyncSession) -> bool:
    """Whether this person is asked for feedback on this case and has not answered yet."""
    if user is None or case.closed_at is None:
        return False
    row = (await session.exec(select(FeedbackRequest).where(
        FeedbackRequest.case_id == case.id, FeedbackRequest.user_id == user.id))).first()
    return row is not None and not row.answered


async def answer(case: Case, user: User, data: FeedbackIn, *, session: AsyncSession) -> None:
    """Keep one party's answer, once: the request is marked answered in the same
    transaction (a second answer finds it so, also when both arrive at once)."""
    if case.closed_at is None:
        raise NotFound(N_("There is no feedback to give on this case."))
    marked = await session.exec(update(FeedbackRequest).where(
        col(FeedbackRequest.case_id) == case.id, col(FeedbackRequest.user_id) == user.id,
        col(FeedbackRequest.answered).is_(False)).values(answered=True))
    if marked.rowcount != 1:
        asked = (await session.exec(select(FeedbackRequest.id).where(
            FeedbackRequest.case_id == case.id, FeedbackRequest.user_id == user.id))).first()
        if asked is None:
            raise NotFound(N_("There is no feedback to give on this case."))
        raise Conflict(N_("You have already given your feedback on this case."))
    mediator = case.chosen_mediator_id
    if mediator is None:  # pragma: no cover - a closed case always had its mediator
        raise Refused(N_("There is no feedback to give on this case."))
    session.add(Feedback(case_id=case.id or 0, mediator_id=mediator, neutral=data.neutral,
                         clear=data.clear, again=data.again, comment=data.comment,
                         on=utcnow().date()))
    await session.exec(update(Case).where(col(Case.id) == case.id).values(
        feedback_answers=col(Case.feedback_answers) + 1,
        feedback_neutral=col(Case.feedback_neutral) + data.neutral,
        feedback_clear=col(Case.feedback_clear) + data.clear))


async def summary_for(mediator: User, *, session: AsyncSession) -> FeedbackSummaryPublic:
    """What a mediator sees of the feedback on their cases: counts and averages, and the
    comments without the case or the day they came from (in random order)."""
    mine = Feedback.mediator_id == mediator.id
    count, neutral, clear = (await session.exec(select(
        func.count(col(Feedback.id)), func.avg(Feedback.neutral), func.avg(Feedback.clear))
        .where(mine))).one()
    again = dict((await session.exec(select(Feedback.again, func.count(col(Feedback.id)))
                                     .where(mine).group_by(Feedback.again))).all())
    comments = (await session.exec(select(Feedback.comment).where(
        mine, Feedback.comment != "").order_by(func.random()))).all()
    return FeedbackSummaryPublic(
        answers=int(count), neutral=round(float(neutral), 2) if neutral is not None else None,
        clear=round(float(clear), 2) if clear is not None else None,
        again_yes=int(again.get("yes", 0)), again_maybe=int(again.get("maybe", 0)),
        again_no=int(again.get("no", 0)), comments=list(comments))

