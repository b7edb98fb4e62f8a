"""Organisations: a request addressed to one waits for its coordinators, who choose among its
mediators (best fitting, least loaded first) and see their cases' metadata, never content."""

from __future__ import annotations

from typing import Any

from tests.harness import Person, Platform, case_request, expect
from tests.harness import form_token as csrf


def organisation(platform: Platform, name: str, **body: Any) -> int:
    created: dict[str, Any] = expect(platform.admin.client.post(
        "/api/v1/admin/organisations",
        json={"name": name, "kind": "centre", "region": "almaty_city"} | body), 201)
    return int(created["id"])


def member(platform: Platform, org: int, person: Person, role: str, status: int = 204) -> None:
    expect(platform.admin.client.put(f"/api/v1/admin/organisations/{org}/members/{person.id}",
                                     json={"role": role}), status)


def test_a_request_to_an_organisation_is_assigned_by_its_coordinator(platform: Platform
                                                                     ) -> None:
    centre = organisation(platform, "Almaty Mediation Centre")
    other = organisation(platform, "Shymkent Chamber", kind="chamber", region="shymkent")
    # Two of the centre's mediators: one fits the request (family, Kazakh, Almaty), one not.
    fits = platform.mediator("Fatima Fits", specialisations=["family"], languages=["kk"],
                             regions=["almaty_city"])
    far = platform.mediator("Nurlan Far", specialisations=["labour"], languages=["ru"],
                            regions=["atyrau"])
    outsider = platform.mediator("Oleg Outsider")
    coordinator = platform.register("Kamila Coordinator")
    stranger_coordinator = platform.register("Stas Coordinator")
    for person in (fits, far):
        member(platform, centre, person, "mediator")
    member(platform, centre, coordinator, "coordinator")
    member(platform, other, stranger_coordinator, "coordinator")
    member(platform, centre, coordinator, "mediator", 400)  # not a mediator of the register

    citizen = platform.register("Aruzhan Citizen")
    summary = "Our neighbours' dog barks all night and we cannot agree on anything."
    both = expect(citizen.client.post("/api/v1/cases", json=case_request(
        category="family", language="kk", organisation_id=centre, mediator_id=far.id)), 400)
    assert both["detail"] == "Choose a mediator or an organisation, not both."
    case_id = expect(citizen.client.post("/api/v1/cases", json=case_request(
        category="family", language="kk", summary=summary, organisation_id=centre)), 201)["id"]

    # Not in the open pool of every mediator: the coordinators choose.
    for person in (fits, far, outsider):
        assert case_id not in [c["id"] for c in expect(
            person.client.get("/api/v1/cases/open"), 200)]
        expect(person.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 404)
    inbox = expect(coordinator.client.get(f"/api/v1/organisations/{centre}/requests"), 200)
    assert [r["id"] for r in inbox] == [case_id]
    assert "summary" not in inbox[0] and summary not in str(inbox)
    assert [s["name"] for s in inbox[0]["suggestions"]] == ["Fatima Fits", "Nurlan Far"]
    assert inbox[0]["suggestions"][0] | {"open_cases": 0} == {
        "user_id": fits.id, "name": "Fatima Fits", "fits_category": True,
        "speaks_language": True, "serves_region": True, "open_cases": 0}

    # Another organisation's coordinator, a mediator and the citizen see no inbox.
    for person in (stranger_coordinator, fits, citizen):
        expect(person.client.get(f"/api/v1/organisations/{centre}/requests"), 404)
        expect(person.client.get(f"/api/v1/organisations/{centre}/cases"), 404)
    expect(platform.anonymous.get(f"/api/v1/organisations/{centre}/requests"), 401)
    assign = f"/api/v1/organisations/{centre}/requests/{case_id}/assign"
    expect(stranger_coordinator.client.post(assign, json={"mediator_id": fits.id}), 404)
    body = expect(coordinator.client.post(assign, json={"mediator_id": outsider.id}), 400)
    assert body["detail"] == "Choose one of the organisation's mediators."

    assigned = expect(coordinator.client.post(assign, json={"mediator_id": fits.id}), 200)
    assert assigned["mediator"] == "Fatima Fits"
    expect(coordinator.client.post(assign, json={"mediator_id": far.id}), 409)
    assert case_id in [c["id"] for c in expect(fits.client.get("/api/v1/cases/open"), 200)]
    assert case_id not in [c["id"] for c in expect(far.client.get("/api/v1/cases/open"), 200)]
    expect(fits.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 200)
    events = expect(citizen.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    assert [e["kind"] for e in events][:3] == ["requested", "assigned", "status"]

    # The coordinator sees the case's metadata only, and nothing of the case itself.
    cases = expect(coordinator.client.get(f"/api/v1/organisations/{centre}/cases"), 200)
    assert [(c["id"], c["status"], c["mediator"]) for c in cases] == [
        (case_id, "accepted", "Fatima Fits")]
    for path in ("", "/events", "/contract", "/drafts", "/sessions"):
        expect(coordinator.client.get(f"/api/v1/cases/{case_id}{path}"), 404)
    assert summary not in coordinator.client.get(f"/organisations/{centre}").text
    # A second request: the fitting mediator now holds one case, and still comes first.
    second = expect(citizen.client.post("/api/v1/cases", json=case_request(
        category="family", language="kk", organisation_id=centre)), 201)["id"]
    inbox = expect(coordinator.client.get(f"/api/v1/organisations/{centre}/requests"), 200)
    assert [(s["name"], s["open_cases"]) for s in inbox[0]["suggestions"]] == [
        ("Fatima Fits", 1), ("Nurlan Far", 0)]

    # The page: the coordinator assigns from the inbox; the register names the organisation.
    page = f"/organisations/{centre}"
    sent = coordinator.client.post(f"{page}/requests/{second}/assign", data={
        "csrf": csrf(coordinator.client, page), "mediator_id": str(far.id)},
        follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == f"{page}?done=assigned"
    assert "Almaty Mediation Centre" in coordinator.client.get("/dashboard").text
    register = expect(platform.anonymous.get("/api/v1/mediators"), 200)
    assert {m["name"]: m["organisations"] for m in register}["Fatima Fits"] == [
        "Almaty Mediation Centre"]
    assert [o["name"] for o in expect(platform.anonymous.get("/api/v1/organisations"), 200)
            ] == ["Almaty Mediation Centre", "Shymkent Chamber"]
