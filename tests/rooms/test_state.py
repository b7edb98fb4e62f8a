"""The room state without a socket: lobby, admission, caucuses, interpreters, what each member
may know, and the grace period of a dropped connection."""

from __future__ import annotations

import pytest

from odr.errors import Conflict, Forbidden, NotFound
from rooms.state import JOINT, Room

MEDIATOR, PARTY_A, PARTY_B, INTERPRETER_B, LAWYER_A, OBSERVER = 1, 2, 3, 4, 5, 6


def full_room(grace: float = 30) -> Room:
    """A room where the mediator admitted both parties, B's interpreter and A's lawyer."""
    room = Room(7, grace_seconds=grace)
    room.join(MEDIATOR, name="Aigul", role="mediator", side=None)
    for uid, role, side in [(PARTY_A, "party", "a"), (PARTY_B, "party", "b"),
                            (INTERPRETER_B, "interpreter", "b"),
                            (LAWYER_A, "representative", "a")]:
        room.join(uid, name=f"user{uid}", role=role, side=side)
        room.admit(MEDIATOR, uid)
    return room


def test_mediator_goes_to_joint_others_wait_in_the_lobby() -> None:
    room = Room(7, grace_seconds=30)
    change = room.join(MEDIATOR, name="Aigul", role="mediator", side=None)
    assert change.entered == {MEDIATOR}
    change = room.join(PARTY_A, name="Erlan", role="party", side="a")
    assert change.knocked == {PARTY_A} and not change.entered
    assert room.lobby() == [PARTY_A]
    assert room.channels() == {JOINT: [MEDIATOR]}
    # The mediator sees who knocks; the party sees only themselves waiting.
    assert room.view(MEDIATOR)["lobby"] == [PARTY_A]
    assert room.view(MEDIATOR)["people"][str(PARTY_A)]["name"] == "Erlan"
    party = room.view(PARTY_A)
    assert party["you"]["channel"] is None
    assert party["channels"] == {} and party["lobby"] == [PARTY_A]
    assert set(party["people"]) == {str(PARTY_A)}

    change = room.admit(MEDIATOR, PARTY_A)
    assert change.entered == {PARTY_A}
    assert room.channels() == {JOINT: [MEDIATOR, PARTY_A]}
    with pytest.raises(Conflict):
        room.admit(MEDIATOR, PARTY_A)  # no longer waiting


def test_only_mediators_admit_open_move_and_close() -> None:
    room = full_room()
    room.join(OBSERVER, name="Oleg", role="observer", side=None)
    before = room.channels(), room.lobby()
    with pytest.raises(Forbidden):
        room.admit(PARTY_A, OBSERVER)
    with pytest.raises(Forbidden):
        room.open_caucus(PARTY_A, [PARTY_A])
    with pytest.raises(Forbidden):
        room.move(PARTY_B, PARTY_A, JOINT)
    with pytest.raises(Forbidden):
        room.close_caucus(INTERPRETER_B, "caucus-00000000")
    with pytest.raises(Forbidden):
        room.recall(LAWYER_A)
    assert (room.channels(), room.lobby()) == before


def test_caucus_with_a_party_brings_their_interpreter_and_hides_it_from_the_other_side() -> None:
    room = full_room()
    change = room.open_caucus(MEDIATOR, [PARTY_B])
    caucus = change.channel
    assert caucus is not None and caucus.startswith("caucus-")
    assert change.entered == {MEDIATOR, PARTY_B, INTERPRETER_B}
    assert room.channels() == {JOINT: [PARTY_A, LAWYER_A],
                               caucus: [MEDIATOR, PARTY_B, INTERPRETER_B]}
    # Side A knows only its own channel: no caucus id, no names of those inside it.
    a = room.view(PARTY_A)
    assert a["channels"] == {JOINT: [PARTY_A, LAWYER_A]}
    assert set(a["people"]) == {str(PARTY_A), str(LAWYER_A)}
    b = room.view(PARTY_B)
    assert b["channels"] == {caucus: [MEDIATOR, PARTY_B, INTERPRETER_B]}
    assert b["you"]["channel"] == caucus
    # The mediator sees everything.
    assert set(room.view(MEDIATOR)["channels"]) == {JOINT, caucus}
    # Media follows the channels.
    assert room.sources(PARTY_A) == {LAWYER_A}
    assert room.sources(PARTY_B) == {MEDIATOR, INTERPRETER_B}


def test_move_between_caucuses_and_recall() -> None:
    room = full_room()
    caucus_b = room.open_caucus(MEDIATOR, [PARTY_B]).channel
    caucus_a = room.open_caucus(MEDIATOR, [PARTY_A, LAWYER_A]).channel
    assert caucus_a is not None and caucus_b is not None
    # The mediator shuttles: they left B's caucus, which stays open with B and the interpreter.
    assert room.channel_of(MEDIATOR) == caucus_a
    assert room.channels()[caucus_b] == [PARTY_B, INTERPRETER_B]
    assert room.channels()[JOINT] == []
    room.move(MEDIATOR, MEDIATOR, caucus_b)
    assert room.channels()[caucus_b] == [MEDIATOR, PARTY_B, INTERPRETER_B]
    with pytest.raises(NotFound):
        room.move(MEDIATOR, PARTY_A, "caucus-ffffffff")
    change = room.recall(MEDIATOR)
    assert change.entered == {MEDIATOR, PARTY_A, PARTY_B, INTERPRETER_B, LAWYER_A}
    assert room.channels() == {JOINT: [MEDIATOR, PARTY_A, PARTY_B, INTERPRETER_B, LAWYER_A]}
    assert room.caucuses == {}


def test_closing_a_caucus_returns_its_members_and_an_emptied_caucus_disappears() -> None:
    room = full_room()
    caucus = room.open_caucus(MEDIATOR, [PARTY_A]).channel
    assert caucus is not None
    with pytest.raises(Conflict):
        room.close_caucus(MEDIATOR, JOINT)
    change = room.close_caucus(MEDIATOR, caucus)
    assert change.entered == {MEDIATOR, PARTY_A}
    assert caucus not in room.channels()
    caucus = room.open_caucus(MEDIATOR, [PARTY_A]).channel
    assert caucus is not None
    room.move(MEDIATOR, PARTY_A, JOINT)
    room.move(MEDIATOR, MEDIATOR, JOINT)
    assert caucus not in room.caucuses


def test_caucus_needs_admitted_people() -> None:
    room = full_room()
    room.join(OBSERVER, name="Oleg", role="observer", side=None)
    with pytest.raises(Conflict):
        room.open_caucus(MEDIATOR, [OBSERVER])
    with pytest.raises(NotFound):
        room.open_caucus(MEDIATOR, [999])
    with pytest.raises(Conflict):
        room.open_caucus(MEDIATOR, [MEDIATOR])
    assert room.caucuses == {}


def test_dropped_member_keeps_their_place_within_the_grace_period() -> None:
    room = full_room(grace=30)
    caucus = room.open_caucus(MEDIATOR, [PARTY_B]).channel
    room.drop(PARTY_B, now=100.0)
    assert room.channel_of(PARTY_B) == caucus
    assert room.view(MEDIATOR)["people"][str(PARTY_B)]["online"] is False
    assert PARTY_B not in room.sources(MEDIATOR)
    assert room.next_expiry() == 130.0
    assert room.expire(now=129.0).removed == set()
    change = room.join(PARTY_B, name="user3", role="party", side="b")
    assert change.entered == {PARTY_B} and not change.knocked
    assert room.channel_of(PARTY_B) == caucus
    assert PARTY_B in room.sources(MEDIATOR)


def test_after_the_grace_period_the_place_is_gone_and_rejoining_means_the_lobby() -> None:
    room = full_room(grace=30)
    room.drop(PARTY_A, now=100.0)
    assert room.expire(now=130.0).removed == {PARTY_A}
    assert PARTY_A not in room.members
    change = room.join(PARTY_A, name="user2", role="party", side="a")
    assert change.knocked == {PARTY_A}
    assert room.channel_of(PARTY_A) is None


def test_zero_grace_removes_at_once_and_the_room_empties() -> None:
    room = Room(7, grace_seconds=0)
    room.join(MEDIATOR, name="Aigul", role="mediator", side=None)
    assert room.drop(MEDIATOR, now=1.0).removed == {MEDIATOR}
    assert room.empty


def test_lobby_members_neither_send_nor_receive() -> None:
    room = full_room()
    room.join(OBSERVER, name="Oleg", role="observer", side=None)
    assert room.sources(OBSERVER) == set()
    assert OBSERVER not in room.sources(MEDIATOR)


def test_a_timer_is_seen_in_its_meeting_only_moves_with_the_room_and_goes_with_its_caucus() -> None:
    room = full_room()
    room.open_caucus(MEDIATOR, [PARTY_B])
    caucus = room.channel_of(PARTY_B)
    assert caucus is not None and caucus != JOINT
    with pytest.raises(Forbidden):
        room.set_timer(PARTY_B, caucus, 60, now=1000.0)
    with pytest.raises(NotFound):
        room.set_timer(MEDIATOR, "caucus-00000000", 60, now=1000.0)
    room.set_timer(MEDIATOR, caucus, 600, now=1000.0)
    room.set_timer(MEDIATOR, JOINT, 120, now=1000.0)
    assert room.view(PARTY_B)["timer"] == {"channel": caucus, "ends_at": 1600.0}
    assert room.view(INTERPRETER_B)["timer"] == {"channel": caucus, "ends_at": 1600.0}
    assert room.view(PARTY_A)["timer"] == {"channel": JOINT, "ends_at": 1120.0}
    # Another process takes the room over: both end at the same moment.
    moved = Room.restore(7, room.snapshot(), grace_seconds=30, now=1010.0)
    assert moved.timers == {caucus: 1600.0, JOINT: 1120.0}
    room.close_caucus(MEDIATOR, caucus)
    assert room.timers == {JOINT: 1120.0}
    room.set_timer(MEDIATOR, JOINT, 0, now=1001.0)
    assert room.view(PARTY_A)["timer"] is None


def test_the_neutrality_record_counts_the_mediators_time_with_each_side() -> None:
    room = full_room()
    room.tally(0.0)  # the mediator and everyone admitted at 0: the joint session
    caucus_a = room.open_caucus(MEDIATOR, [PARTY_A]).channel
    assert caucus_a is not None
    room.tally(100.0)
    room.move(MEDIATOR, MEDIATOR, JOINT)  # party A stays in the caucus, alone
    room.tally(160.0)
    caucus_b = room.open_caucus(MEDIATOR, [PARTY_B]).channel  # B's interpreter follows
    room.tally(200.0)
    assert room.view(MEDIATOR)["neutrality"] == {
        "seconds": {"joint": 140, "a": 60, "b": 0, "other": 0}, "position": "b"}
    # Only the mediators watch it live.
    assert room.view(PARTY_B)["neutrality"] is None
    room.drop(MEDIATOR, now=230.0)
    room.tally(230.0)  # a broken connection counts nowhere
    restored = Room.restore(7, room.snapshot(), grace_seconds=30, now=250.0)
    restored.join(MEDIATOR, name="Aigul", role="mediator", side=None)
    restored.tally(300.0)  # back in B's caucus, in the process that took the room over
    restored.move(MEDIATOR, PARTY_A, caucus_b or "")  # both sides now: another meeting
    restored.tally(320.0)
    restored.leave(MEDIATOR)
    restored.tally(350.0)
    assert restored.neutrality.current(400.0) == {"joint": 140.0, "a": 60.0, "b": 50.0,
                                                  "other": 30.0}
    assert restored.neutrality.started == 0.0
