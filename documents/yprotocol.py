"""The y-websocket wire format (y-protocols): just enough to route messages without re-encoding.

A message is ``varUint type`` then, for sync, ``varUint step`` and a ``varUint8Array`` payload;
awareness carries one ``varUint8Array``; auth answers ``permission denied`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

SYNC, AWARENESS, AUTH, QUERY_AWARENESS = 0, 1, 2, 3
STEP1, STEP2, UPDATE = 0, 1, 2


class ProtocolError(ValueError):
    """The bytes are not a y-websocket message we understand."""


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("truncated varUint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varUint too long")


def write_var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_payload(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("truncated payload")
    return data[pos:end], end


@dataclass(frozen=True)
class Message:
    kind: int
    step: int | None  # for sync messages
    payload: bytes


def parse(data: bytes) -> Message:
    kind, pos = read_var_uint(data, 0)
    if kind == SYNC:
        step, pos = read_var_uint(data, pos)
        if step not in (STEP1, STEP2, UPDATE):
            raise ProtocolError(f"unknown sync step {step}")
        payload, pos = read_payload(data, pos)
        return Message(kind, step, payload)
    if kind == AWARENESS:
        payload, pos = read_payload(data, pos)
        return Message(kind, None, payload)
    if kind == QUERY_AWARENESS:
        return Message(kind, None, b"")
    raise ProtocolError(f"unknown message type {kind}")


def sync_message(step: int, payload: bytes) -> bytes:
    return bytes((SYNC, step)) + write_var_uint(len(payload)) + payload


def awareness_message(payload: bytes) -> bytes:
    return bytes((AWARENESS,)) + write_var_uint(len(payload)) + payload


def permission_denied(reason: str) -> bytes:
    """y-websocket's auth message: the client logs the reason (its permissionDeniedHandler)."""
    text = reason.encode()
    return bytes((AUTH, 0)) + write_var_uint(len(text)) + text


EMPTY_UPDATES = (b"\x00\x00", b"\x00\x00\x00")


def is_empty_update(update: bytes) -> bool:
    """An update with no structs and no deletions (what a client sends when it has nothing)."""
    return update in EMPTY_UPDATES


def read_awareness(payload: bytes) -> list[tuple[int, int, str]]:
    """An awareness update: ``[(client id, clock, state as JSON text ("null" = gone))]``."""
    count, pos = read_var_uint(payload, 0)
    entries: list[tuple[int, int, str]] = []
    for _ in range(count):
        client, pos = read_var_uint(payload, pos)
        clock, pos = read_var_uint(payload, pos)
        state, pos = read_payload(payload, pos)
        try:
            entries.append((client, clock, state.decode()))
        except UnicodeDecodeError as exc:
            raise ProtocolError("awareness state is not text") from exc
    return entries


def write_awareness(entries: list[tuple[int, int, str]]) -> bytes:
    out = bytearray(write_var_uint(len(entries)))
    for client, clock, state in entries:
        data = state.encode()
        out += write_var_uint(client) + write_var_uint(clock) + write_var_uint(len(data)) + data
    return awareness_message(bytes(out))
