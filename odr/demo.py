"""The demo: a mediator, two parties, an administrator, a court with a clerk, and one case."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import register
from odr.models import AccountRole, Case, CaseRole, Court, GrammaticalGender, Side, User
from odr.schemas import CaseCreate, CourtIn, MediatorProfileIn, SessionCreate
from odr.services import Services


@dataclass
class DemoAccounts:
    created: bool
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (role, email, password)
    case_id: int | None = None


async def database_is_empty(session: AsyncSession) -> bool:
    return int((await session.exec(select(func.count()).select_from(User))).one()) == 0


async def create_demo(svc: Services, *, only_if_empty: bool = True, tag: str = ""
                      ) -> DemoAccounts:
    """Create the demo people and case; passwords are random and returned to be printed once.
    ``tag`` goes into the e-mail addresses and the court's name, so that several demo sets can
    live in one database (bench/cluster_bench.py seats one set per room)."""
    async with svc.maker() as session:
        if only_if_empty and not await database_is_empty(session):
            return DemoAccounts(created=False)
        result = DemoAccounts(created=True)
        zone = ZoneInfo(svc.settings.default_timezone)

        async def person(email: str, name: str, role: AccountRole, label: str,
                         gender: GrammaticalGender) -> User:
            email = email.replace("@", f"{tag}@")
            password = secrets.token_urlsafe(9)
            user = User(email=email, name=name, role=role, grammatical_gender=gender,
                        password_hash=await svc.hashing.hash_async(password), language="ru")
            session.add(user)
            await session.flush()
            result.logins.append((label, email, password))
            return user

        he, she = GrammaticalGender.masculine, GrammaticalGender.feminine
        admin = await person("admin@demo.odr", "Әкімші Админ", AccountRole.administrator,
                             "administrator", GrammaticalGender.unspecified)
        mediator = await person("mediator@demo.odr", "Айгүл Серікқызы Нұрланова",
                                AccountRole.mediator, "mediator", she)
        party_a = await person("party.a@demo.odr", "Ерлан Қасымов", AccountRole.party, "party A",
                               he)
        party_b = await person("party.b@demo.odr", "Ольга Петрова", AccountRole.party, "party B",
                               she)
        clerk = await person("clerk@demo.odr", "Динара Ахметова", AccountRole.court_clerk,
                             "court clerk", she)

        await register.save_profile(
            mediator.id or 0,
            MediatorProfileIn(
                kind="professional", certificate="MED-2023-0417" + tag.upper(),
                certified_on=date(2023, 4, 17),
                languages=["kk", "ru"], regions=["almaty_city", "almaty"],
                specialisations=["family", "property", "community"],
                bio="Кәсіби медиатор, 12 жыл тәжірибе. Профессиональный медиатор, 12 лет опыта.",
            ),
            actor=admin, session=session, audit=svc.audit,
        )
        court: Court = await register.save_court(
            CourtIn(name="Специализированный межрайонный экономический суд г. Алматы" + tag,
                    region="almaty_city", address="Алматы, ул. Толе би, 146"),
            actor=admin, session=session, audit=svc.audit,
        )
        clerk.court_id = court.id
        session.add(clerk)

        case: Case = await svc.cases.request(
            CaseCreate(
                category="property", language="ru", region="almaty_city",
                summary="Спор о возврате долга по расписке: 1 200 000 тенге, срок возврата истёк "
                        "в марте. Хочу договориться о графике выплат без суда.",
                other_party_name=party_b.name, other_party_contact=party_b.email,
                mediator_id=mediator.id,
            ),
            requester=party_a, session=session,
        )
        await svc.cases.accept(case, mediator=mediator, session=session)
        await svc.cases.add_participant(case, party_b, CaseRole.party, Side.b, session=session)
        await svc.cases.schedule(
            case,
            # At ten in the morning where the platform is, the day after tomorrow (a session at
            # whatever hour `make run` happened to be started was at 02:00 now and then).
            SessionCreate(starts_at=datetime.combine(
                datetime.now(zone).date() + timedelta(days=2), time(10), zone)),
            mediator=mediator, session=session,
        )
        await session.commit()
        result.case_id = case.id
        return result
