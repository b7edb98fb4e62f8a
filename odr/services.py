"""The long-lived parts of the service, made once in the lifespan and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.access import Subject
from odr.audit import AuditLog
from odr.cases import CaseService
from odr.cluster import Cluster
from odr.db import make_engine, make_read_engine, make_sessionmaker
from odr.i18n import Catalogues
from odr.invitations import Invitations
from odr.mail import Mailer
from odr.models import Case
from odr.password_reset import PasswordResets
from odr.security import PasswordHashing
from odr.settings import Settings
from odr.signup import Signups

# What another package adds to the case page (e.g. the drafts list): extra template context.
CasePagePart = Callable[[Case, Subject, AsyncSession], Awaitable[dict[str, Any]]]


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    read_engine: AsyncEngine  # the same pool as ``engine`` but on SQLite files
    maker: async_sessionmaker[AsyncSession]  # transactions that may write
    reader: async_sessionmaker[AsyncSession]  # read-only ones, which never wait for a writer
    catalogues: Catalogues
    hashing: PasswordHashing
    audit: AuditLog
    cases: CaseService
    mailer: Mailer
    invitations: Invitations
    password_resets: PasswordResets
    signups: Signups
    # Several processes (ODR_REDIS_URL): who owns which room and draft, events to every process.
    cluster: Cluster | None = None
    case_page_parts: list[CasePagePart] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        if problem := settings.cluster_problem():
            raise ValueError(problem)
        engine = make_engine(settings.effective_database_url)
        read_engine = make_read_engine(settings.effective_database_url, engine)
        maker = make_sessionmaker(engine)
        hashing = PasswordHashing(settings)
        audit = AuditLog(settings.effective_secret_key.encode())
        cases = CaseService(audit)
        mailer = Mailer(settings, maker)
        catalogues = Catalogues(settings.default_language)
        cluster = Cluster(settings) if settings.redis_url else None
        if cluster is not None:
            cluster.listeners.append(cases.deliver)
            cases.publish = cluster.publish
        return cls(
            cluster=cluster,
            settings=settings, engine=engine, read_engine=read_engine, maker=maker,
            reader=make_sessionmaker(read_engine),
            catalogues=catalogues, hashing=hashing, audit=audit,
            cases=cases, mailer=mailer,
            invitations=Invitations(cases=cases, mailer=mailer, settings=settings,
                                    hashing=hashing),
            password_resets=PasswordResets(settings=settings, maker=maker, mailer=mailer,
                                           hashing=hashing, catalogues=catalogues, audit=audit),
            signups=Signups(settings=settings, maker=maker, mailer=mailer, hashing=hashing,
                            catalogues=catalogues),
        )

    async def close(self) -> None:
        if self.read_engine.sync_engine.pool is not self.engine.sync_engine.pool:
            await self.read_engine.dispose()
        await self.engine.dispose()
