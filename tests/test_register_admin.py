"""The administrator's register API: who may become a court clerk."""

from __future__ import annotations

from odr.models import AccountRole
from tests.harness import Platform, expect


def test_only_a_citizen_or_a_clerk_can_be_made_a_court_clerk(platform: Platform) -> None:
    admin = platform.admin
    court = expect(admin.client.post("/api/v1/admin/courts", json={
        "name": "Astana City Court", "region": "astana"}), 201)
    clerks = f"/api/v1/admin/courts/{court['id']}/clerks"
    mediator = platform.mediator()
    for person in (admin, mediator):
        refused = expect(admin.client.post(f"{clerks}/{person.id}", json={}), 400)
        assert refused["detail"] == "This account cannot be a court clerk."
    # Nothing changed: the administrator still administers, the mediator is still registered.
    expect(admin.client.get("/api/v1/admin/outbox"), 200)
    assert platform.scalar("SELECT role FROM \"user\" WHERE id = ?", mediator.id) == "mediator"
    citizen = platform.register("Dana Clerk")
    made = expect(admin.client.post(f"{clerks}/{citizen.id}", json={}), 200)
    assert (made["role"], made["court_id"]) == (AccountRole.court_clerk, court["id"])
