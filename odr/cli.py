"""The administrative command line: ``odr migrate | run | create-user | demo | audit verify``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from odr import accounts, migrate, register
from odr.demo import DemoAccounts, create_demo
from odr.errors import Refused
from odr.models import AccountRole
from odr.schemas import Registration
from odr.services import Services
from odr.settings import Settings


def print_demo(result: DemoAccounts, url: str) -> None:
    if not result.created:
        print("Demo: the database already has accounts; nothing created.")
        return
    print("\nDemo accounts (passwords are shown only this once):")
    for label, email, password in result.logins:
        print(f"  {label:<14} {email:<22} {password}")
    print(f"Sign in at {url}/login\n")


async def _create_user(settings: Settings, email: str, name: str, role: str, password: str,
                       court_id: int | None) -> int:
    svc = Services.create(settings)
    try:
        async with svc.maker() as session:
            if court_id is not None:
                await register.court_by_id(court_id, session=session)
            user = await accounts.create_user(
                Registration(email=email, name=name, password=password), session=session,
                hashing=svc.hashing, role=AccountRole(role),
            )
            user.court_id = court_id
            session.add(user)
            await svc.audit.append(session, "account.created_by_cli", actor_id=None,
                                   detail={"user_id": user.id, "role": role, "court_id": court_id})
            await session.commit()
            print(f"Created {role} {user.email} (id {user.id}).")
            return 0
    finally:
        await svc.close()


async def _demo(settings: Settings, only_if_empty: bool, url: str) -> None:
    svc = Services.create(settings)
    try:
        print_demo(await create_demo(svc, only_if_empty=only_if_empty), url)
    finally:
        await svc.close()


async def _audit_verify(settings: Settings) -> int:
    svc = Services.create(settings)
    try:
        async with svc.maker() as session:
            report = await svc.audit.verify(session)
    finally:
        await svc.close()
    if report.intact:
        print(f"Audit log intact: {report.entries} entries.")
        return 0
    print(f"Audit log BROKEN ({report.entries} entries):")
    for problem in report.problems():
        print(f"  {problem}")
    return 1


def _log_to_stderr() -> None:
    """The service's own messages (``odr.*``) from INFO up, beside uvicorn's."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("odr")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odr", description="ODR platform administration")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    run = sub.add_parser("run", help="migrate, create the demo if empty, and serve")
    run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.add_argument("--no-demo", action="store_true")
    cu = sub.add_parser("create-user", help="create an account (e.g. the first administrator)")
    cu.add_argument("email")
    cu.add_argument("--name", required=True)
    cu.add_argument("--role", required=True, choices=[r.value for r in AccountRole])
    cu.add_argument("--password-stdin", action="store_true", required=True,
                    help="read the password from standard input")
    cu.add_argument("--court", type=int, metavar="COURT_ID",
                    help="the court a court clerk works for (its id in the register)")
    demo = sub.add_parser("demo", help="create the demo data")
    demo.add_argument("--force", action="store_true", help="even if accounts exist")
    au = sub.add_parser("audit", help="audit log")
    au.add_argument("what", choices=["verify"])
    args = parser.parse_args(argv)
    settings = Settings()

    if args.command == "migrate":
        migrate.upgrade(settings.effective_database_url)
        print("Database is up to date.")
        return 0
    if args.command == "run":
        import uvicorn

        if problem := settings.cluster_problem():
            print(f"odr: {problem}", file=sys.stderr)
            return 2
        _log_to_stderr()

        from odr.app import create_app

        migrate.upgrade(settings.effective_database_url)
        if not args.no_demo:
            asyncio.run(_demo(settings, only_if_empty=True, url=f"http://{args.host}:{args.port}"))
        print(f"Serving on http://{args.host}:{args.port}")
        app = create_app(settings, migrate_on_start=False, serving=True)
        uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True, log_level="info")
        return 0
    if args.command == "create-user":
        if (args.court is not None) != (args.role == AccountRole.court_clerk.value):
            parser.error("--court is given for a court clerk, and only for one")
        password = sys.stdin.readline().rstrip("\n")
        migrate.upgrade(settings.effective_database_url)
        try:
            return asyncio.run(_create_user(settings, args.email, args.name, args.role, password,
                                            args.court))
        except ValidationError as exc:
            for err in exc.errors():
                print(f"error: {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
            return 2
        except Refused as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
    if args.command == "demo":
        migrate.upgrade(settings.effective_database_url)
        asyncio.run(_demo(settings, only_if_empty=not args.force, url=settings.public_url))
        return 0
    if args.command == "audit":
        return asyncio.run(_audit_verify(settings))
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
