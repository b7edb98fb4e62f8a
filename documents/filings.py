"""Filing a signed agreement with a court: receipts, the court's inbox, decisions, webhooks.

Court systems hear of each change by webhook: the JSON body is signed with HMAC-SHA256 using
the court's secret (header ``X-ODR-Signature: sha256=<hex>``). Each notice is a row written in
the same transaction as the change it tells of, with the time of its next attempt; a worker
running with the app sends what is due and, when the receiver fails, schedules the next attempt
with a growing pause, until it is delivered or the attempts run out. Every attempt is recorded,
and a restart loses nothing: the new process's worker takes up whatever is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

import httpx
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.models import Agreement, CourtWebhook, Filing, WebhookDelivery
from odr.errors import N_, Conflict, NotFound
from odr.models import Case, CaseStatus, Court, User, utcnow
from odr.services import Services

log = logging.getLogger("odr.filings")
# Pauses before each retry, in seconds: four times longer each time from 2 s, at most 6 hours;
# eleven attempts in all over about 21 hours, then the delivery is given up (and recorded so).
BACKOFF = tuple(min(2.0 * 4**n, 6 * 3600.0) for n in range(10))
# The worker also looks for due deliveries this often: another process sharing the database
# may have queued them, and its wake-up call does not reach this one.
POLL_SECONDS = 30.0
# A delivery being attempted is pushed this far ahead, so no other worker takes it meanwhile;
# if this process dies during the attempt, the delivery comes due again after it.
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 10.0
BATCH = 20


def signature_header(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Filings:
    def __init__(self, services: Services) -> None:
        self.svc = services
        self.backoff: Sequence[float] = BACKOFF
        self.poll_seconds = POLL_SECONDS
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def open_filing(self, agreement_id: int, court_id: int, *,
                          session: AsyncSession) -> Filing | None:
        """The agreement's filing with the court that has not been rejected, if there is one."""
        return (await session.exec(select(Filing).where(
            Filing.agreement_id == agreement_id, Filing.court_id == court_id,
            Filing.status != "rejected"))).first()

    async def file(self, case: Case, agreement: Agreement, court_id: int, *, user: User,
                   verification: str, session: AsyncSession) -> tuple[Filing, bool]:
        """File the agreement; while a filing with that court stands (received or accepted),
        filing again returns it (``created`` is False then). After a rejection it is filed
        anew."""
        court = await session.get(Court, court_id)
        if court is None or not court.active:
            raise NotFound(N_("No such court."))
        if agreement.completed_at is None:
            raise Conflict(N_("Only a signed agreement can be filed."))
        agreement_id = agreement.id or 0
        existing = await self.open_filing(agreement_id, court_id, session=session)
        if existing is not None:
            return existing, False
        filing = Filing(number="pending-" + secrets.token_hex(6), agreement_id=agreement_id,
                        case_id=case.id or 0, court_id=court_id, filed_by=user.id or 0,
                        verification=verification)
        session.add(filing)
        try:
            await session.flush()
        except IntegrityError:
            # The same filing made at the same moment by another request (on PostgreSQL both
            # can pass the check above): the database's unique index let the first one in.
            await session.rollback()
            existing = await self.open_filing(agreement_id, court_id, session=session)
            if existing is None:
                raise
            log.info("filing of agreement %s with court %s made twice at once; the first is "
                     "%s", agreement_id, court_id, existing.number)
            return existing, False
        filing.number = f"F-{filing.filed_at:%Y}-{filing.id:06d}"
        if case.status in (CaseStatus.signed, CaseStatus.court_rejected):
            await self.svc.cases.transition(case, CaseStatus.filed, actor=user, session=session)
        await self.svc.cases.record(session, case, "filed", actor=user, detail=filing.number,
                                    audit_detail={"filing_id": filing.id, "court_id": court_id})
        await self._queue_webhook(session, filing, "filing.received")
        await session.commit()
        return filing, True

    async def decide(self, filing: Filing, *, accept: bool, reason: str, clerk: User,
                     session: AsyncSession) -> Filing:
        if filing.status != "received":
            raise Conflict(N_("This filing has already been decided."))
        case = await session.get(Case, filing.case_id)
        assert case is not None
        filing.status = "accepted" if accept else "rejected"
        filing.reason = reason
        filing.decided_by, filing.decided_at = clerk.id, utcnow()
        session.add(filing)
        target = CaseStatus.court_accepted if accept else CaseStatus.court_rejected
        if case.status == CaseStatus.filed:
            await self.svc.cases.transition(case, target, actor=clerk, session=session,
                                            reason=reason)
        await self.svc.cases.record(session, case, f"filing_{filing.status}", actor=clerk,
                                    detail=reason or filing.number,
                                    audit_detail={"filing_id": filing.id})
        await self._queue_webhook(session, filing, f"filing.{filing.status}")
        await session.commit()
        return filing

    async def inbox(self, court_id: int, *, session: AsyncSession) -> Sequence[Filing]:
        return (await session.exec(select(Filing).where(Filing.court_id == court_id)
                                   .order_by(col(Filing.id).desc()))).all()

    async def of_case(self, case_id: int, *, session: AsyncSession
                      ) -> Sequence[tuple[Filing, Court]]:
        """The case's filings with their courts, the newest first."""
        return (await session.exec(
            select(Filing, Court).join(Court, col(Court.id) == col(Filing.court_id))
            .where(Filing.case_id == case_id).order_by(col(Filing.id).desc()))).all()

    # --- webhooks ----------------------------------------------------------------------------

    async def _queue_webhook(self, session: AsyncSession, filing: Filing, event: str) -> None:
        hook = (await session.exec(select(CourtWebhook).where(
            CourtWebhook.court_id == filing.court_id))).first()
        if hook is None:
            return
        body = json.dumps({"event": event, "filing": {
            "id": filing.id, "number": filing.number, "case_id": filing.case_id,
            "court_id": filing.court_id, "status": filing.status, "reason": filing.reason,
            "filed_at": filing.filed_at.isoformat(),
        }}, ensure_ascii=False, sort_keys=True)
        session.add(WebhookDelivery(court_id=filing.court_id, filing_id=filing.id or 0,
                                    event=event, body=body, next_attempt_at=utcnow()))

    def start(self) -> None:
        """Start the delivery worker (with the app); it first takes up whatever is due."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="webhook deliveries")

    def deliver_later(self) -> None:
        """Wake the worker: a request has just committed new deliveries."""
        self._wake.set()

    async def _work(self) -> None:
        while True:
            self._wake.clear()
            try:
                pause = await self.deliver_due()
            except Exception:  # e.g. the database briefly unreachable: try later
                log.exception("webhook deliveries failed; trying again later")
                pause = self.poll_seconds
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(pause, self.poll_seconds))

    async def deliver_due(self) -> float:
        """Attempt the deliveries that are due; the seconds until the next one is due."""
        claimed = await self._claim_due()
        if claimed:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                await asyncio.gather(*(self._attempt(client, i) for i in claimed))
        async with self.svc.maker() as session:
            upcoming = (await session.exec(select(func.min(WebhookDelivery.next_attempt_at))
                                           )).one()
        if upcoming is None:
            return self.poll_seconds
        # Round again at once after sending (more may be due); but when nothing could be
        # claimed, something due is another worker's: no spinning on it.
        return max(0.0 if claimed else 1.0, (upcoming - utcnow()).total_seconds())

    async def _claim_due(self) -> list[int]:
        """Take due deliveries for this worker: each is claimed by moving its time ahead in a
        conditional UPDATE, so of two workers on one database only one sends it."""
        now = utcnow()
        claimed: list[int] = []
        async with self.svc.maker() as session:
            due = (await session.exec(
                select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
                .where(col(WebhookDelivery.next_attempt_at) <= now)
                .order_by(col(WebhookDelivery.next_attempt_at)).limit(BATCH))).all()
            for delivery_id, at in due:
                taken = await session.exec(
                    update(WebhookDelivery)
                    .where(col(WebhookDelivery.id) == delivery_id,
                           col(WebhookDelivery.next_attempt_at) == at)
                    .values(next_attempt_at=now + LEASE))
                if taken.rowcount == 1:
                    claimed.append(delivery_id or 0)
            await session.commit()
        return claimed

    async def _attempt(self, client: httpx.AsyncClient, delivery_id: int) -> None:
        async with self.svc.maker() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            hook = (await session.exec(select(CourtWebhook).where(
                CourtWebhook.court_id == delivery.court_id))).first() if delivery else None
            await session.commit()
        if delivery is None:
            return
        status, error = None, ""
        if hook is None:
            error = "the court has no webhook any more"
        else:
            body = delivery.body.encode()
            try:
                response = await client.post(hook.url, content=body, headers={
                    "content-type": "application/json",
                    "x-odr-signature": signature_header(hook.secret, body),
                    "x-odr-delivery": str(delivery_id)})
                status = response.status_code
            except httpx.HTTPError as exc:
                error = str(exc)[:500] or type(exc).__name__
        async with self.svc.maker() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return
            now = utcnow()
            delivery.attempts += 1
            delivery.last_status, delivery.last_error = status, error
            if status is not None and 200 <= status < 300:
                delivery.delivered_at, delivery.next_attempt_at = now, None
            elif hook is None or delivery.attempts > len(self.backoff):
                delivery.gave_up_at, delivery.next_attempt_at = now, None
                log.warning("webhook delivery %s given up after %d attempts", delivery_id,
                            delivery.attempts)
            else:
                pause = self.backoff[delivery.attempts - 1]
                delivery.next_attempt_at = now + timedelta(seconds=pause)
            session.add(delivery)
            await session.commit()

    async def close(self) -> None:
        """Stop the worker; an attempt cut short is made again after its lease."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
