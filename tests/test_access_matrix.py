"""Every role against every case action, through the real routes (DESIGN.md section 5).

The expected answers are written out below as one table. An allowed cell acts on a case built
for it alone and checks the effect a participant sees; a refused cell checks its status code and
that the case looks exactly as before (status, participants, timeline, sessions, invitations,
audit log). The refused cells of a row share one case: a refusal must change nothing, and each
refused cell proves that it did not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from odr import access, cases
from odr.access import Action, Subject
from odr.errors import Refused
from odr.models import CaseRole, CaseStatus, User
from odr.services import Services
from tests.harness import Cast, Platform, expect, open_platform, unique_email

# Who asks. "other" takes part in another case (with the same mediator); "free" is a registered
# mediator not chosen for the case; "stranger" has an account and no case at all.
WHO = ("req", "pB", "rep", "med", "co", "int", "obs", "str", "oth", "free", "adm", "clk", "anon")

# action       case status   req  pB   rep  med  co   int  obs  str  oth  free adm  clk  anon
# "--": nobody holds this role yet (before a mediator takes the case, only the requester
# invites, and only parties, representatives and interpreters).
MATRIX = """
view           requested     200  200  200  200  --   200  --   404  404  404  404  404  401
view           accepted      200  200  200  200  200  200  200  404  404  404  404  404  401
view           withdrawn     200  200  200  200  200  200  200  404  404  404  404  404  401
events         requested     200  200  200  200  --   200  --   404  404  404  404  404  401
events         accepted      200  200  200  200  200  200  200  404  404  404  404  404  401
invite         requested     201  403  403  404  --   403  --   404  404  404  404  404  401
invite         accepted      201  403  403  201  201  403  403  404  404  404  404  404  401
invite         in_session    409  403  403  201  201  403  403  404  404  404  404  404  401
invite         withdrawn     409  403  403  409  409  403  403  404  404  404  404  404  401
accept         requested     403  403  403  200  --   403  --   404  404  404  404  404  401
accept         accepted      403  403  403  409  409  403  403  404  404  404  404  404  401
consent        accepted      409  409  403  403  403  403  403  404  404  404  404  404  401
consent        consented     409  409  403  403  403  403  403  404  404  404  404  404  401
decline        requested     200  200  403  200  --   403  --   404  404  404  404  404  401
decline        accepted      200  200  403  403  403  403  403  404  404  404  404  404  401
decline        consented     409  409  403  403  403  403  403  404  404  404  404  404  401
withdraw       requested     200  200  403  404  --   403  --   404  404  404  404  404  401
withdraw       consented     200  200  403  403  403  403  403  404  404  404  404  404  401
withdraw       withdrawn     409  409  403  403  403  403  403  404  404  404  404  404  401
in_session     accepted      403  403  403  409  409  403  403  404  404  404  404  404  401
in_session     consented     403  403  403  200  200  403  403  404  404  404  404  404  401
no_agreement   accepted      403  403  403  409  409  403  403  404  404  404  404  404  401
no_agreement   in_session    403  403  403  200  200  403  403  404  404  404  404  404  401
sessions       requested     403  403  403  404  --   403  --   404  404  404  404  404  401
sessions       accepted      403  403  403  201  201  403  403  404  404  404  404  404  401
sessions       withdrawn     403  403  403  409  409  403  403  404  404  404  404  404  401
join           requested     409  409  409  404  --   409  --   404  404  404  404  404  401
join           accepted      409  409  409  409  409  409  409  404  404  404  404  404  401
join           consented     200  200  200  200  200  200  200  404  404  404  404  404  401
join           in_session    200  200  200  200  200  200  200  404  404  404  404  404  401
join           no_agreement  409  409  409  409  409  409  409  404  404  404  404  404  401
revoke         requested     403  403  403  404  --   403  --   404  404  404  404  404  401
revoke         accepted      403  403  403  200  200  403  403  404  404  404  404  404  401
revoke         in_session    403  403  403  200  200  403  403  404  404  404  404  404  401
remove         requested     403  403  403  404  --   403  --   404  404  404  404  404  401
remove         accepted      403  403  403  200  200  403  403  404  404  404  404  404  401
remove         in_session    403  403  403  200  200  403  403  404  404  404  404  404  401
remove         withdrawn     403  403  403  409  409  403  403  404  404  404  404  404  401
contract_terms accepted      403  403  403  200  403  403  403  404  404  404  404  404  401
contract_terms consented     403  403  403  409  403  403  403  404  404  404  404  404  401
extend_term    accepted      403  403  403  409  403  403  403  404  404  404  404  404  401
extend_term    consented     403  403  403  200  403  403  403  404  404  404  404  404  401
close          requested     403  403  403  404  --   403  --   404  404  404  404  404  401
close          accepted      403  403  403  200  403  403  403  404  404  404  404  404  401
close          withdrawn     403  403  403  200  403  403  403  404  404  404  404  404  401
"""

# Which action of the policy each row exercises.
ACTIONS = {
    "view": Action.view_case,
    "events": Action.view_case,
    "invite": Action.invite,
    "accept": Action.accept_case,
    "consent": Action.consent,
    "decline": Action.decline_case,
    "withdraw": Action.withdraw,
    "in_session": Action.start_session,
    "no_agreement": Action.end_without_agreement,
    "sessions": Action.schedule_session,
    "join": Action.join_session,
    "revoke": Action.revoke_invitation,
    "remove": Action.remove_participant,
    "contract_terms": Action.set_contract_terms,
    "extend_term": Action.extend_term,
    "close": Action.close_case,
}
READ_ONLY = frozenset({"view", "events", "join"})
STATUS_CHANGES = {"decline": "declined", "withdraw": "withdrawn", "in_session": "in_session",
                  "no_agreement": "no_agreement"}


@dataclass(frozen=True)
class Cell:
    action: str
    status: CaseStatus
    who: str
    expected: int

    @property
    def id(self) -> str:
        return f"{self.action}@{self.status.value}-{self.who}-{self.expected}"


def parse_matrix(text: str) -> list[Cell]:
    cells: list[Cell] = []
    for line in text.strip().splitlines():
        action, status, *answers = line.split()
        assert action in ACTIONS, action
        assert len(answers) == len(WHO), line
        for who, answer in zip(WHO, answers, strict=True):
            if answer != "--":
                cells.append(Cell(action, CaseStatus(status), who, int(answer)))
    return cells


CELLS = parse_matrix(MATRIX)


@dataclass
class Everyone:
    """The cast of every case, and the people who have no part in it."""

    cast: Cast
    stranger: TestClient
    other: TestClient
    free: TestClient
    admin: TestClient
    clerk: TestClient
    ids: dict[str, int]

    def client(self, platform: Platform, who: str) -> TestClient:
        c = self.cast
        clients = {
            "req": c.requester.client, "pB": c.party_b.client, "rep": c.representative.client,
            "med": c.mediator.client, "co": c.co_mediator.client, "int": c.interpreter.client,
            "obs": c.observer.client, "str": self.stranger, "oth": self.other, "free": self.free,
            "adm": self.admin, "clk": self.clerk,
        }
        return clients[who] if who != "anon" else platform.anonymous


@pytest.fixture(scope="module")
def matrix_platform(
    tmp_path_factory: pytest.TempPathFactory, template_db: Path
) -> Iterator[Platform]:
    with open_platform(tmp_path_factory.mktemp("matrix"), template_db) as p:
        yield p


@pytest.fixture(scope="module")
def everyone(matrix_platform: Platform) -> Everyone:
    p = matrix_platform
    cast = p.cast()
    stranger = p.register("Sergei Stranger")
    other = p.register("Oksana Othercase")
    free = p.mediator("Farida Freemediator")
    clerk = p.clerk()
    # "other" takes part in a case of their own, with the same mediator.
    theirs = expect(other.client.post("/api/v1/cases", json={
        "category": "family", "summary": "A different dispute about a shared flat.",
        "other_party_name": "Somebody Else", "other_party_contact": "else@example.kz",
        "language": "kk", "region": "astana", "mediator_id": cast.mediator.id,
    }), 201)
    expect(cast.mediator.client.post(f"/api/v1/cases/{theirs['id']}/accept", json={}), 200)
    ids = {
        "req": cast.requester.id, "pB": cast.party_b.id, "rep": cast.representative.id,
        "med": cast.mediator.id, "co": cast.co_mediator.id, "int": cast.interpreter.id,
        "obs": cast.observer.id, "str": stranger.id, "oth": other.id, "free": free.id,
        "adm": p.admin.id, "clk": clerk.id,
    }
    return Everyone(cast, stranger.client, other.client, free.client, p.admin.client,
                    clerk.client, ids)


SharedCases = dict[tuple[str, CaseStatus], int]


@pytest.fixture(scope="module")
def shared_cases(matrix_platform: Platform, everyone: Everyone) -> SharedCases:
    """One case per row for the cells that must change nothing (built on first use)."""

    class Lazy(SharedCases):
        def __missing__(self, key: tuple[str, CaseStatus]) -> int:
            self[key] = matrix_platform.build_case(everyone.cast, key[1])
            return self[key]

    return Lazy()


def future_session() -> dict[str, str]:
    starts = datetime.now(UTC).astimezone().replace(microsecond=0) + timedelta(days=3)
    return {"starts_at": starts.isoformat()}


def target_of(cell: Cell, platform: Platform, everyone: Everyone, case_id: int) -> int:
    """Whom or what ``revoke`` and ``remove`` act on: a fresh pending invitation (made by
    whoever may invite at this stage, before the snapshot), or the interpreter."""
    cast = everyone.cast
    if cell.action == "revoke":
        inviter = cast.requester if cell.status == CaseStatus.requested else cast.mediator
        created = expect(inviter.client.post(f"/api/v1/cases/{case_id}/invitations", json={
            "email": unique_email("revocable"), "role": "party", "side": "b"}), 201)
        invitation_id: int = created["id"]
        return invitation_id
    return cast.interpreter.id


def act(action: str, client: TestClient, case_id: int, target: int = 0) -> httpx2.Response:
    """The HTTP request a user sends for ``action``."""
    base = f"/api/v1/cases/{case_id}"
    if action == "view":
        return client.get(base)
    if action == "events":
        return client.get(f"{base}/events")
    if action == "invite":
        return client.post(f"{base}/invitations", json={
            "email": unique_email("invitee"), "role": "party", "side": "b"})
    if action == "accept":
        return client.post(f"{base}/accept", json={})
    if action == "consent":
        return client.post(f"{base}/consent", json={})
    if action in STATUS_CHANGES:
        return client.post(f"{base}/status", json={"status": STATUS_CHANGES[action]})
    if action == "sessions":
        return client.post(f"{base}/sessions", json=future_session())
    if action == "revoke":
        return client.post(f"{base}/invitations/{target}/revoke", json={})
    if action == "remove":
        return client.post(f"{base}/participants/{target}/remove",
                           json={"reason": "Not needed in this case."})
    if action == "contract_terms":
        return client.put(f"{base}/contract", json={"fee": "20 000 tenge", "term_days": 20})
    if action == "close":  # a party withdrew, as the mediator records it
        return client.post(f"{base}/close", json={"outcome": "withdrawn",
                                                  "reason": "party_withdrew"})
    if action == "extend_term":
        return client.post(f"{base}/term/extensions", json={"days": 5, "parties_agreed": True})
    raise AssertionError(action)


def join_check(platform: Platform, case_id: int, user_id: int | None) -> int:
    """Ask the policy about joining the session, as the room's WebSocket will; 200 if allowed."""

    async def ask(svc: Services) -> int:
        async with svc.maker() as session:
            case = await cases.get_case(case_id, session=session)
            user = await session.get(User, user_id) if user_id else None
            participant = await cases.participant_of(case_id, user_id, session=session)
            registered = await cases.registered_mediator(user_id, session=session)
        try:
            access.check(Action.join_session, Subject(user, participant), case,
                         registered_mediator=registered)
        except Refused as refused:
            return refused.status_code
        return 200

    return platform.run(ask)


def snapshot(platform: Platform, everyone: Everyone, case_id: int) -> dict[str, Any]:
    """What the case looks like to its requester, plus the rows behind it."""
    client = everyone.cast.requester.client
    return {
        "case": expect(client.get(f"/api/v1/cases/{case_id}"), 200),
        "events": expect(client.get(f"/api/v1/cases/{case_id}/events"), 200),
        "sessions": expect(client.get(f"/api/v1/cases/{case_id}/sessions"), 200),
        "invitations": platform.sql(
            "SELECT id, accepted_at FROM invitation WHERE case_id = ? ORDER BY id", case_id),
        "audit": platform.scalar("SELECT count(*) FROM auditentry"),
    }


def test_the_matrix_covers_every_action_and_role() -> None:
    assert set(ACTIONS.values()) == set(Action)
    exercised = {ACTIONS[c.action] for c in CELLS}
    assert exercised == set(Action)
    for action in ACTIONS:
        for who in WHO:
            assert any(c.who == who and c.action == action for c in CELLS), (action, who)


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_access(
    cell: Cell, matrix_platform: Platform, everyone: Everyone,
    shared_cases: SharedCases,
) -> None:
    allowed = cell.expected < 400
    if allowed and cell.action not in READ_ONLY:
        case_id = matrix_platform.build_case(everyone.cast, cell.status)
    else:
        # Read-only rows share a case per status; so do the refusals of one row.
        row = "read" if cell.action in READ_ONLY else cell.action
        case_id = shared_cases[row, cell.status]
    target = target_of(cell, matrix_platform, everyone, case_id)
    before = snapshot(matrix_platform, everyone, case_id)

    if cell.action == "join":
        assert join_check(matrix_platform, case_id, everyone.ids.get(cell.who)) == cell.expected
        assert snapshot(matrix_platform, everyone, case_id) == before
        return

    response = act(cell.action, everyone.client(matrix_platform, cell.who), case_id, target)
    assert response.status_code == cell.expected, response.text
    after = snapshot(matrix_platform, everyone, case_id)
    if not allowed:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail
        assert after == before
        return
    assert_effect(cell, response.json(), before, after, everyone)


def assert_effect(
    cell: Cell, body: Any, before: dict[str, Any], after: dict[str, Any], everyone: Everyone
) -> None:
    """What the participants see after an allowed action."""
    actor = everyone.ids[cell.who]
    new_events = after["events"][len(before["events"]):]
    if cell.action in READ_ONLY:
        assert after == before
        if cell.action == "view":
            assert body == before["case"]
        else:
            assert body == before["events"]
            assert body[0]["kind"] == "requested"
        return
    assert new_events, "an allowed change appears on the timeline"
    assert all(e["actor_id"] == actor for e in new_events)
    assert after["audit"] > before["audit"]
    if cell.action == "invite":
        assert [e["kind"] for e in new_events] == ["invited"]
        assert len(after["invitations"]) == len(before["invitations"]) + 1
        assert body["role"] == "party" and body["side"] == "b"
    elif cell.action == "accept":
        assert after["case"]["status"] == "accepted"
        assert {"user_id": actor, "role": CaseRole.mediator.value} in [
            {"user_id": p["user_id"], "role": p["role"]} for p in after["case"]["participants"]
        ]
    elif cell.action == "contract_terms":
        assert [e["kind"] for e in new_events] == ["contract_void", "contract_prepared"]
        assert (body["fee"], body["term_days"]) == ("20 000 tenge", 20)
    elif cell.action == "close":
        assert [e["kind"] for e in new_events][-1] == "closed"
        assert (body["status"], body["outcome"]) == ("withdrawn", "withdrawn")
    elif cell.action == "extend_term":
        assert [e["kind"] for e in new_events] == ["term_extended"]
        assert body["extended_days"] == 5
    elif cell.action in STATUS_CHANGES:
        assert after["case"]["status"] == STATUS_CHANGES[cell.action]
        assert new_events[-1]["kind"] == "status"
        assert new_events[-1]["status"] == STATUS_CHANGES[cell.action]
    elif cell.action == "sessions":
        assert len(after["sessions"]) == len(before["sessions"]) + 1
        assert [e["kind"] for e in new_events] == ["session_scheduled"]
    elif cell.action == "revoke":
        assert [e["kind"] for e in new_events] == ["invitation_revoked"]
        assert body["revoked_at"] is not None
    elif cell.action == "remove":
        assert [e["kind"] for e in new_events] == ["participant_removed"]
        assert everyone.ids["int"] not in {p["user_id"] for p in after["case"]["participants"]}
    else:  # pragma: no cover
        raise AssertionError(cell.action)
