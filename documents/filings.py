"""Filing a signed agreement with a court: receipts, the court's inbox, decisions, webhooks.

Court systems hear of each change by webhook: the JSON body is signed with HMAC-SHA256 using
the court's secret (header ``X-ODR-Signature: sha256=<hex>``), and a failed delivery is retried
with growing pauses; every attempt is recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.models import Agreement, CourtWebhook, Filing, WebhookDelivery
from odr.errors import N_, Conflict, NotFound
from odr.models import Case, CaseStatus, Court, User, utcnow
from odr.services import Services

log = logging.getLogger("odr.filings")
# Pauses before each retry, in seconds (the first attempt is immediate).
BACKOFF = (0.5, 1, 2, 4, 8, 16, 32, 60)


def signature_header(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Filings:
    def __init__(self, services: Services) -> None:
        self.svc = services
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self.backoff: Sequence[float] = BACKOFF

    async def file(self, case: Case, agreement: Agreement, court_id: int, *, user: User,
                   verification: str, session: AsyncSession) -> tuple[Filing, bool]:
        """File the agreement; filing the same agreement with the same court again returns the
        first filing (``created`` is False then)."""
        court = await session.get(Court, court_id)
        if court is None or not court.active:
            raise NotFound(N_("No such court."))
        if agreement.completed_at is None:
            raise Conflict(N_("Only a signed agreement can be filed."))
        existing = (await session.exec(select(Filing).where(
            Filing.agreement_id == agreement.id, Filing.court_id == court_id))).first()
        if existing is not None:
            return existing, False
        filing = Filing(number="pending-" + secrets.token_hex(6), agreement_id=agreement.id or 0,
                        case_id=case.id or 0, court_id=court_id, filed_by=user.id or 0,
                        verification=verification)
        session.add(filing)
        await session.flush()
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
                                    event=event, body=body))

    def deliver_later(self) -> None:
        """Send waiting webhooks in the background (after the request's commit)."""
        task = asyncio.get_running_loop().create_task(self.deliver_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver_pending(self) -> None:
        async with self.svc.maker() as session:
            waiting = (await session.exec(select(WebhookDelivery).where(
                col(WebhookDelivery.delivered_at).is_(None))
                .order_by(col(WebhookDelivery.id)))).all()
            ids = [d.id or 0 for d in waiting if d.id not in self._in_flight]
        self._in_flight.update(ids)
        try:
            await asyncio.gather(*(self._deliver(i) for i in ids))
        finally:
            self._in_flight.difference_update(ids)

    async def _deliver(self, delivery_id: int) -> None:
        for pause in (0.0, *self.backoff):
            if pause:
                await asyncio.sleep(pause)
            async with self.svc.maker() as session:
                delivery = await session.get(WebhookDelivery, delivery_id)
                if delivery is None or delivery.delivered_at is not None:
                    return
                hook = (await session.exec(select(CourtWebhook).where(
                    CourtWebhook.court_id == delivery.court_id))).first()
                if hook is None:
                    return
                url, secret, body = hook.url, hook.secret, delivery.body.encode()
                await session.commit()
            status, error = None, ""
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.post(url, content=body, headers={
                        "content-type": "application/json",
                        "x-odr-signature": signature_header(secret, body),
                        "x-odr-delivery": str(delivery_id)})
                status = response.status_code
            except httpx.HTTPError as exc:
                error = str(exc)[:500] or type(exc).__name__
            async with self.svc.maker() as session:
                delivery = await session.get(WebhookDelivery, delivery_id)
                assert delivery is not None
                delivery.attempts += 1
                delivery.last_status, delivery.last_error = status, error
                if status is not None and 200 <= status < 300:
                    delivery.delivered_at = utcnow()
                session.add(delivery)
                await session.commit()
                if delivery.delivered_at is not None:
                    return
        log.warning("webhook delivery %s gave up", delivery_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
