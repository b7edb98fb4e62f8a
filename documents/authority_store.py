"""The local signing authority's folder, the same on every host: with several processes it is
kept in the database (``AuthorityFile``) and written into each process's ``<data dir>/pki`` at
start-up, so that a PDF signed through one host verifies through any other.

The first process to start uploads its folder (making the authority if it has none); a process
that made one of its own before joining keeps it trusted, retired, and uses the shared one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.models import AuthorityFile
from documents.pki import LocalAuthority

log = logging.getLogger(__name__)


async def share(folder: Path, passphrase: bytes,
                maker: async_sessionmaker[AsyncSession], *, make: bool) -> None:
    """Bring ``folder`` in line with the shared copy, or share this one (made first when
    ``make``: no platform certificate is configured)."""
    for _ in range(2):
        async with maker() as session:
            rows = (await session.exec(select(AuthorityFile))).all()
        if rows:
            await asyncio.to_thread(_write, folder, {row.name: row.data for row in rows})
            return
        if make:
            await asyncio.to_thread(LocalAuthority.open, folder, passphrase)
        files = await asyncio.to_thread(_read, folder)
        if not files:
            return
        try:
            async with maker() as session:
                session.add_all([AuthorityFile(name=n, data=d) for n, d in files.items()])
                await session.commit()
            log.info("shared the local signing authority of %s", folder)
            return
        except IntegrityError:
            continue  # another process shared its own first: take that one


def _read(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _write(folder: Path, files: dict[str, bytes]) -> None:
    current = folder / "ca.pem"
    if current.exists() and current.read_bytes() != files.get("ca.pem"):
        # This host signed under an authority of its own: it stays trusted, retired.
        retired = folder / "retired"
        retired.mkdir(parents=True, exist_ok=True)
        stem = f"ca-local-{hashlib.sha256(current.read_bytes()).hexdigest()[:16]}"
        current.replace(retired / f"{stem}.pem")
        if (folder / "ca.key").exists():
            (folder / "ca.key").replace(retired / f"{stem}.key")
        log.warning("this host's own signing authority is retired for the shared one")
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if target.suffix == ".key":
            target.chmod(0o600)
