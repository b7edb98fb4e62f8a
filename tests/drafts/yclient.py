"""A headless Yjs client for tests: a pycrdt document synced over the y-websocket protocol.

It uses pycrdt's own protocol helpers (not the server's), so it checks the server against an
independent implementation of the wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import websockets
from pycrdt import (
    Doc,
    TransactionEvent,
    XmlElement,
    XmlFragment,
    XmlText,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)
from websockets.asyncio.client import ClientConnection

from documents.prosemirror import to_text


class YClient:
    def __init__(self, url: str, cookie: str | None = None) -> None:
        self.url = url
        self.cookie = cookie
        self.doc: Doc[Any] = Doc()
        self.synced = asyncio.Event()
        self.changed = asyncio.Event()
        self.denied: list[str] = []
        self.received: list[bytes] = []
        self.socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._remote = False
        self._subscription = self.doc.observe(self._on_local_change)

    async def __aenter__(self) -> YClient:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.socket = await websockets.connect(self.url, additional_headers=headers)
        self._reader = asyncio.create_task(self._read())
        await self.socket.send(create_sync_message(self.doc))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await self._reader

    def _on_local_change(self, event: TransactionEvent) -> None:
        if self._remote or self.socket is None:
            return
        update = event.update
        if update != b"\x00\x00":
            asyncio.get_running_loop().create_task(self.socket.send(create_update_message(update)))

    async def _read(self) -> None:
        assert self.socket is not None
        async for message in self.socket:
            assert isinstance(message, bytes)
            self.received.append(message)
            if message[0] == YMessageType.SYNC:
                self._remote = True
                try:
                    reply = handle_sync_message(message[1:], self.doc)
                finally:
                    self._remote = False
                if reply is not None:
                    await self.socket.send(reply)
                if message[1] == YSyncMessageType.SYNC_STEP2:
                    self.synced.set()
                self.changed.set()
            elif message[0] == 2:  # auth: permission denied
                self.denied.append(message[3:].decode())
                self.changed.set()

    # --- editing -------------------------------------------------------------------------

    @property
    def root(self) -> XmlFragment:
        root: XmlFragment = self.doc.get("default", type=XmlFragment)
        return root

    def add_paragraph(self, text: str) -> None:
        self.root.children.append(XmlElement("paragraph", {}, [XmlText(text)]))

    def text(self) -> str:
        return to_text(self.doc)

    async def wait_for(self, predicate: Callable[[YClient], bool], seconds: float = 10) -> None:
        async def until() -> None:
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), seconds)

    async def send_raw(self, data: bytes) -> None:
        assert self.socket is not None
        await self.socket.send(data)


def raw_update(text: str) -> bytes:
    """A real Yjs update made by another document: a paragraph with ``text``."""
    doc: Doc[Any] = Doc()
    root = doc.get("default", type=XmlFragment)
    root.children.append(XmlElement("paragraph", {}, [XmlText(text)]))
    return doc.get_update()


def step2_message(update: bytes) -> bytes:
    return bytes((YMessageType.SYNC, YSyncMessageType.SYNC_STEP2)) + _var(len(update)) + update


def update_message(update: bytes) -> bytes:
    return create_update_message(update)


def _var(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
