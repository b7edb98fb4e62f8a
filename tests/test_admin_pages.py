"""The administrator's pages and the public register page, used as a browser uses them: forms
are read from the page (what is pre-filled is what gets sent back), posted with the CSRF token,
and the result is checked through the public API."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

from odr.models import AccountRole
from tests.harness import Person, Platform, expect
from tests.harness import form_token as csrf
from tests.test_pages import field_errors


class FormReader(HTMLParser):
    """The fields one form would send, in document order, as a browser submits it unchanged."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside or "name" not in a and tag != "option":
            return
        if tag == "input":
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [self._options[0][0]]
            self.fields.append((self._select, chosen[0]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text))
            self._textarea = None


def read_form(html: str, action: str) -> list[tuple[str, str]]:
    reader = FormReader(action)
    reader.feed(html)
    assert reader.fields, f"no form posting to {action}"
    return reader.fields


def post_form(client: TestClient, path: str, fields: list[tuple[str, str]]) -> Any:
    """Post fields as a browser does: repeated names keep their order (hidden, then checkbox)."""
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return client.post(path, data=data, follow_redirects=False)


def replace(fields: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(n, value if n == name else v) for n, v in fields]


def court_row(platform: Platform, court_id: int) -> tuple[Any, ...]:
    return platform.sql("select name, region, address, active from court where id = ?",
                        court_id)[0]


def listed_on_page(client: TestClient, query: str = "") -> set[str]:
    page = client.get("/mediators" + query)
    assert page.status_code == 200
    return set(re.findall(r'<li class="card mediator">\s*<h2>([^<]+)</h2>', page.text))


def listed_by_api(client: TestClient, query: str = "") -> set[str]:
    return {m["name"] for m in expect(client.get("/api/v1/mediators" + query), 200)}


# --- courts -------------------------------------------------------------------------------

def test_admin_renames_a_court_and_takes_it_out_of_use_and_back(platform: Platform) -> None:
    admin = platform.admin.client
    token = csrf(admin, "/admin")
    added = admin.post("/admin/courts", data={"csrf": token, "name": "Almaty Distrct Court",
                                              "region": "almaty_city", "address": "Abai 1"},
                       follow_redirects=False)
    assert added.status_code == 303
    court_id = next(c["id"] for c in expect(admin.get("/api/v1/courts"), 200)
                    if c["name"] == "Almaty Distrct Court")

    # The edit link opens the form filled in, with the court's id in a hidden field.
    page = admin.get("/admin").text
    assert f'href="/admin?court={court_id}#court-form"' in page
    fields = read_form(admin.get(f"/admin?court={court_id}").text, "/admin/courts")
    assert ("court_id", str(court_id)) in fields
    assert ("name", "Almaty Distrct Court") in fields
    assert ("region", "almaty_city") in fields and ("address", "Abai 1") in fields
    assert fields[-2:] == [("active", "false"), ("active", "true")]  # ticked: still in use

    courts_before = platform.scalar("select count(*) from court")
    fixed = post_form(admin, "/admin/courts", replace(fields, "name", "Almaty District Court"))
    assert fixed.status_code == 303
    assert platform.scalar("select count(*) from court") == courts_before  # changed, not added
    assert court_row(platform, court_id) == ("Almaty District Court", "almaty_city", "Abai 1", 1)

    # Deactivated: no longer offered to those filing an agreement, shown as such to the admin.
    off = admin.post(f"/admin/courts/{court_id}/active", data={"csrf": token, "active": "false"},
                     follow_redirects=False)
    assert off.status_code == 303
    assert court_id not in {c["id"] for c in expect(platform.anonymous.get("/api/v1/courts"),
                                                    200)}
    page = admin.get("/admin").text
    assert "Almaty District Court (not in use)" in page  # in the list and the clerk form
    assert f'action="/admin/courts/{court_id}/active"' in page and "Reactivate" in page

    # Editing the inactive court keeps it inactive (its box comes unticked, "false" is sent).
    fields = read_form(admin.get(f"/admin?court={court_id}").text, "/admin/courts")
    assert fields[-1] == ("active", "false")
    assert post_form(admin, "/admin/courts",
                     replace(fields, "address", "Abai 2")).status_code == 303
    assert court_row(platform, court_id) == ("Almaty District Court", "almaty_city", "Abai 2", 0)

    on = admin.post(f"/admin/courts/{court_id}/active", data={"csrf": token, "active": "true"},
                    follow_redirects=False)
    assert on.status_code == 303
    assert court_id in {c["id"] for c in expect(platform.anonymous.get("/api/v1/courts"), 200)}


def test_court_form_errors_stay_beside_the_court_form(platform: Platform) -> None:
    admin = platform.admin.client
    token = csrf(admin, "/admin")
    court = expect(admin.post("/api/v1/admin/courts",
                              json={"name": "Astana Court", "region": "astana"}), 201)
    short = admin.post("/admin/courts", data={"csrf": token, "court_id": str(court["id"]),
                                              "name": "A", "region": "astana"})
    assert short.status_code == 422
    assert "name" in field_errors(short.text)
    assert '<details id="court-form" open>' in short.text
    assert f'name="court_id" value="{court["id"]}"' in short.text  # still the edit form
    assert court_row(platform, court["id"])[0] == "Astana Court"

    gone = admin.post("/admin/courts", data={"csrf": token, "court_id": "999999",
                                             "name": "Ghost Court", "region": "astana"})
    assert gone.status_code == 404
    assert field_errors(gone.text)["court_id"] == "No such court."
    assert platform.scalar("select count(*) from court where name = 'Ghost Court'") == 0


# --- mediators ----------------------------------------------------------------------------

def test_admin_edits_a_mediator_and_untouched_fields_are_kept(platform: Platform) -> None:
    mediator = platform.mediator("Gulnara Editable", certified_on="2019-04-02")
    admin = platform.admin.client
    csrf(admin, "/admin")
    assert f'href="/admin?mediator={mediator.id}#mediator-form"' in admin.get("/admin").text

    fields = read_form(admin.get(f"/admin?mediator={mediator.id}").text, "/admin/mediators")
    assert ("email", mediator.email) in fields
    assert ("kind", "professional") in fields and ("certificate", "MED-1") in fields
    assert ("certified_on", "2019-04-02") in fields
    assert {v for n, v in fields if n == "languages"} == {"kk", "ru"}
    assert {v for n, v in fields if n == "regions"} == {"almaty_city", "almaty"}
    assert {v for n, v in fields if n == "specialisations"} == {"family", "property"}
    assert ("bio", "Twelve years of practice.") in fields
    assert ("active", "true") in fields

    done = post_form(admin, "/admin/mediators",
                     replace(fields, "bio", "Fifteen years of practice."))
    assert done.status_code == 303
    entry = next(m for m in expect(platform.anonymous.get("/api/v1/mediators"), 200)
                 if m["user_id"] == mediator.id)
    assert entry["bio"] == "Fifteen years of practice."
    assert entry["kind"] == "professional" and entry["certificate"] == "MED-1"
    assert entry["certified_on"] == "2019-04-02"
    assert set(entry["languages"]) == {"kk", "ru"}
    assert set(entry["regions"]) == {"almaty_city", "almaty"}
    assert set(entry["specialisations"]) == {"family", "property"}


def test_admin_takes_a_mediator_out_of_the_register_and_back(platform: Platform) -> None:
    mediator = platform.mediator("Timur Leaving")
    admin = platform.admin.client
    csrf(admin, "/admin")
    assert "Timur Leaving" in listed_on_page(platform.anonymous)

    fields = read_form(admin.get(f"/admin?mediator={mediator.id}").text, "/admin/mediators")
    unticked = [f for f in fields if f != ("active", "true")]  # the box is unticked
    assert ("active", "false") in unticked
    assert post_form(admin, "/admin/mediators", unticked).status_code == 303
    assert "Timur Leaving" not in listed_on_page(platform.anonymous)
    assert "Timur Leaving" not in listed_by_api(platform.anonymous)
    assert platform.scalar("select active from mediatorprofile where user_id = ?",
                           mediator.id) == 0

    # The form shows the box unticked now; ticking it again puts them back.
    fields = read_form(admin.get(f"/admin?mediator={mediator.id}").text, "/admin/mediators")
    assert ("active", "true") not in fields
    assert post_form(admin, "/admin/mediators",
                     fields + [("active", "true")]).status_code == 303
    assert "Timur Leaving" in listed_by_api(platform.anonymous)


def test_mediator_form_errors_are_shown_beside_the_mediator_form(platform: Platform) -> None:
    admin = platform.admin.client
    token = csrf(admin, "/admin")
    page = admin.post("/admin/mediators", data={"csrf": token, "email": "nobody@example.kz",
                                                "kind": "professional", "active": "false"})
    assert page.status_code == 422
    assert field_errors(page.text) == {"email": "No account with this e-mail."}
    assert '<details id="mediator-form" open>' in page.text
    assert 'value="nobody@example.kz"' in page.text


# --- clerks -------------------------------------------------------------------------------

def test_unknown_court_for_a_clerk_is_shown_beside_the_court_field(platform: Platform) -> None:
    person = platform.register("Saule Clerk")
    admin = platform.admin.client
    token = csrf(admin, "/admin")
    page = admin.post("/admin/clerks", data={"csrf": token, "clerk_email": person.email,
                                             "court_id": "999999"})
    assert 400 <= page.status_code < 500
    assert field_errors(page.text) == {"court_id": "No such court."}
    assert '<details id="clerk-form" open>' in page.text
    assert f'value="{person.email}"' in page.text  # what was typed is kept
    for junk in ("abc", "²", "99999999999"):
        page = admin.post("/admin/clerks", data={"csrf": token, "clerk_email": person.email,
                                                 "court_id": junk})
        assert page.status_code == 422, junk
        assert field_errors(page.text) == {"court_id": "Choose a court."}
        assert admin.get(f"/admin?court={junk}&mediator={junk}").status_code == 200
    assert platform.sql('select role, court_id from "user" where id = ?', person.id) == [
        ("party", None)]


# --- who may -----------------------------------------------------------------------------

def snapshot(platform: Platform) -> list[Any]:
    return [
        platform.sql("select id, name, region, address, active from court order by id"),
        platform.sql("select * from mediatorprofile order by id"),
        platform.sql('select id, role, court_id from "user" order by id'),
    ]


def test_only_the_administrator_may_post_admin_forms(platform: Platform) -> None:
    mediator = platform.mediator("Marat Registered")
    clerk = platform.clerk("Dana Clerk")
    party = platform.register("Pavel Party")
    court_id = platform.scalar("select id from court")
    staff = platform.create_account(AccountRole.court_clerk, "Kanat Staff")
    visitors: list[tuple[TestClient, int]] = [
        (p.client, 403) for p in (mediator, clerk, party, staff)
    ] + [(platform.anonymous, 401)]
    before = snapshot(platform)
    for client, refused in visitors:
        token = csrf(client, "/")
        posts: dict[str, dict[str, Any]] = {
            "/admin/mediators": {"email": party.email, "kind": "public", "active": "true"},
            "/admin/courts": {"court_id": str(court_id), "name": "Renamed Court",
                              "region": "astana"},
            f"/admin/courts/{court_id}/active": {"active": "false"},
            "/admin/clerks": {"clerk_email": party.email, "court_id": str(court_id)},
            "/admin/audit": {},
        }
        for path, data in posts.items():
            answer = client.post(path, data={"csrf": token, **data}, follow_redirects=False)
            assert answer.status_code == refused, (path, answer.status_code)
        page = client.get("/admin", follow_redirects=False)
        assert page.status_code == (403 if refused == 403 else 303)
    assert snapshot(platform) == before


# --- the public register page -------------------------------------------------------------

def make_register(platform: Platform) -> list[Person]:
    return [
        platform.mediator("Aigul Family", kind="professional", languages=["kk"],
                          regions=["almaty_city"], specialisations=["family"]),
        platform.mediator("Bolat Labour", kind="public", languages=["ru"], regions=["astana"],
                          specialisations=["labour"]),
        platform.mediator("Chingis Court", kind="court", languages=["kk", "en"],
                          regions=["astana", "turkistan"], specialisations=["property"]),
    ]


def test_register_page_filters_by_language_region_specialisation_and_kind(
    platform: Platform,
) -> None:
    make_register(platform)
    browser = platform.anonymous
    everyone = {"Aigul Family", "Bolat Labour", "Chingis Court"}
    assert listed_on_page(browser) == everyone
    for query, names in [
        ("?language=kk", {"Aigul Family", "Chingis Court"}),
        ("?language=en", {"Chingis Court"}),
        ("?region=astana", {"Bolat Labour", "Chingis Court"}),
        ("?specialisation=labour", {"Bolat Labour"}),
        ("?kind=court", {"Chingis Court"}),
        ("?language=kk&region=astana", {"Chingis Court"}),
        ("?language=ru&kind=court", set()),
        ("?kind=nonsense", everyone),  # an unknown kind is no filter, not an error
    ]:
        assert listed_on_page(browser, query) == names, query
        if "nonsense" not in query:
            assert listed_by_api(browser, query) == names, query
    page = browser.get("/mediators?region=astana&kind=public").text
    assert '<option value="astana" selected>' in page  # the chosen filters stay chosen
    assert '<option value="public" selected>' in page
    assert "No mediator matches your search." in browser.get("/mediators?language=en&kind=public"
                                                             ).text
