"""Supplementary rules (補充規定): versions from the templates, the version in force, validation
against the national ceilings, amendments through the API and the pages, and who may do what."""
from __future__ import annotations

import copy
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from tests.conftest import as_tenant, post_form

YUANLIN_DATES = ["2023-01-19", "2022-04-22", "2021-08-19", "2019-08-29", "2019-08-15"]
YUANLIN_MEETINGS = ["期末校務會議通過", "學生學習歷程工作小組會議修正", "學生學習歷程工作小組會議修正",
                    "期初校務會議修正", "學生學習歷程工作小組會議修正"]
MB = 1024 * 1024


@pytest.fixture
def yuanlin(make_school, make_user, api_for):
    """A 員林 school, its admin's API client (English messages) and the rules in force."""
    school = make_school("yuanlin")
    admin = make_user(school, "school_admin")
    api = api_for(school, admin)
    api.lang = "en"
    rules = api.get("/api/v1/rules").get_json()["rules"]
    return school, admin, api, rules


def version_count(api) -> int:
    return len(api.get("/api/v1/rules/history").get_json()["versions"])


def amend_events(app, school) -> list:
    from lp_saas.audit import services as audit

    with as_tenant(app, school):
        return [(e.actor_label, e.details) for e in audit.search(school.id, action="rules.amend")]


# --- provisioning and the version in force ------------------------------------------------------

def test_yuanlin_school_gets_five_versions_and_the_latest_is_in_force(yuanlin):
    school, admin, api, rules = yuanlin
    versions = api.get("/api/v1/rules/history").get_json()["versions"]
    assert [v["adopted_on"] for v in versions] == YUANLIN_DATES
    assert [v["version"] for v in versions] == [5, 4, 3, 2, 1]
    assert [v["adopted_by"] for v in versions] == YUANLIN_MEETINGS
    assert versions[0]["superseded_on"] is None and versions[1]["superseded_on"] == "2023-01-19"
    # the older versions follow the national rules of their day: 3 per semester
    for older in versions[1:]:
        assert older["rules"]["course_outcomes"]["selection_cap"] == 3
        assert older["rules"]["course_outcomes"]["selection_period"] == "semester"

    body = api.get("/api/v1/rules").get_json()
    assert body["version"] == 5 and body["adopted_on"] == "2023-01-19" and body["adopted_by"] == "期末校務會議通過"
    assert rules["course_outcomes"]["selection_cap"] == 6 and rules["course_outcomes"]["selection_period"] == "year"
    assert rules["performances"]["selection_cap_per_year"] == 10
    assert rules["graduates"]["retention_years"] == 3
    assert rules["receipt"]["paper_letter_for_departed"] is True
    assert rules["staff_departure"]["policy"] in ("delay_expiry", "hand_to_deputy", "hand_to_same_subject")
    group = rules["working_group"]
    assert group["convener"] == "校長" and group["executive_secretary"] == "教務主任"
    assert sum(m["count"] for m in group["members"]) == 18
    assert {"title": "各年級導師代表", "count": 3} in group["members"]
    assert {(t["audience"], t["unit"], t["min_per_year"]) for t in rules["trainings"]} == {
        ("students", "圖書館", 1), ("teachers", "教務處", 1), ("parents", "輔導處", 1)}
    assert body["national"]["course_outcomes"] == {"selection_cap": 6, "selection_period": "year"}
    assert body["national"]["uploads"]["file_types"]["pdf"] == 4 * MB


def test_moe_school_gets_one_version_of_national_defaults(make_school, make_user, api_for):
    school = make_school("moe")
    api = api_for(school, make_user(school, "school_admin"))
    versions = api.get("/api/v1/rules/history").get_json()["versions"]
    assert len(versions) == 1 and "校務會議" in versions[0]["adopted_by"]
    rules = versions[0]["rules"]
    assert rules["course_outcomes"]["selection_cap"] == 6
    assert rules["uploads"]["file_types"] == {"pdf": 4 * MB, "jpg": 4 * MB, "png": 4 * MB,
                                              "mp3": 10 * MB, "mp4": 10 * MB}


def test_seeding_again_creates_nothing(app, yuanlin):
    school, _admin, api, _rules = yuanlin
    from lp_saas.database import db
    from lp_saas.tenants.rulesets import seed_rule_sets_from_template

    with as_tenant(app, school):
        assert seed_rule_sets_from_template(school, "yuanlin") == 0
        db.session.commit()
    assert version_count(api) == 5


@pytest.mark.parametrize("day, expected", [
    ("2019-08-14", None), ("2019-08-15", 1), ("2019-08-28", 1), ("2019-08-29", 2), ("2021-08-18", 2),
    ("2021-08-19", 3), ("2022-04-21", 3), ("2022-04-22", 4), ("2023-01-18", 4), ("2023-01-19", 5),
    ("2030-01-01", 5),
])
def test_in_force_on_each_boundary(app, yuanlin, day, expected):
    school, _admin, api, _rules = yuanlin
    from lp_saas.tenants import rulesets

    with as_tenant(app, school):
        found = rulesets.in_force(school.id, date.fromisoformat(day))
        assert (found.version if found else None) == expected
    response = api.get(f"/api/v1/rules?on={day}")
    if expected is None:
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "no_rules_in_force"
    else:
        assert response.status_code == 200
        assert response.get_json()["version"] == expected


def test_the_national_ceilings_follow_the_day(yuanlin):
    _school, _admin, api, _rules = yuanlin
    before = api.get("/api/v1/rules?on=2022-07-31").get_json()
    after = api.get("/api/v1/rules?on=2022-08-01").get_json()
    assert before["version"] == after["version"] == 4
    assert before["national"]["course_outcomes"] == {"selection_cap": 3, "selection_period": "semester"}
    assert after["national"]["course_outcomes"] == {"selection_cap": 6, "selection_period": "year"}


@pytest.mark.parametrize("bad", ["2023-13-01", "yesterday", "2023-1-19", "20230119"])
def test_a_bad_date_is_refused_with_a_message(yuanlin, bad):
    _school, _admin, api, _rules = yuanlin
    response = api.get(f"/api/v1/rules?on={bad}")
    assert response.status_code == 422
    assert "YYYY-MM-DD" in response.get_json()["error"]["details"]["on"]


def test_current_rules_defaults_to_today_in_taipei(app, yuanlin):
    school, _admin, _api, rules = yuanlin
    from lp_saas.tenants import rulesets

    with as_tenant(app, school):
        assert rulesets.current_rules(school.id) == rules
        assert rulesets.current_rules(school.id, date(2020, 1, 1))["course_outcomes"]["selection_cap"] == 3
        # before the first adoption, the platform's defaults within the national rules of that day
        assert rulesets.current_rules(school.id, date(2018, 1, 1))["course_outcomes"]["selection_period"] == "semester"


# --- validation: every violation is a 422 naming the field, and nothing is stored -------------

def _set(rules, path, value):
    target = rules
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


DELETE = object()

VIOLATIONS = [
    # (what to change, value, field path of the message, words the English message contains)
    ("course_outcomes.selection_cap", 8, "rules.course_outcomes.selection_cap",
     "selection cap of 8 per academic year exceeds the national ceiling of 6 per academic year"),
    ("course_outcomes.selection_period", "semester", "rules.course_outcomes.selection_cap",
     "6 per semester exceeds the national ceiling of 6 per academic year"),
    ("performances.selection_cap_per_year", 11, "rules.performances.selection_cap_per_year",
     "11 per academic year exceeds the national ceiling of 10 per academic year"),
    ("uploads.file_types.pdf", 5 * MB, "rules.uploads.file_types.pdf",
     "pdf files, 5 MB, exceeds the national ceiling of 4 MB"),
    ("uploads.file_types.mp4", 10 * MB + 1, "rules.uploads.file_types.mp4", "exceeds the national ceiling of 10 MB"),
    ("uploads.file_types.docx", 1 * MB, "rules.uploads.file_types.docx",
     "docx is not a file type the central database accepts"),
    ("uploads.file_types", {}, "rules.uploads.file_types", "Allow at least one file type"),
    ("course_outcomes.upload_window_days", 10, "rules.course_outcomes.upload_window_days",
     "10 days after the semester-end ceremony is shorter than the national minimum of 14 days"),
    ("performances.upload_window_days", 13, "rules.performances.upload_window_days",
     "shorter than the national minimum of 14 days"),
    ("course_outcomes.certification_deadline_days", 7, "rules.course_outcomes.certification_deadline_days",
     "comes before the upload window closes"),
    ("graduates.retention_years", 0, "rules.graduates.retention_years", "sealed for 1 to 10 years"),
    ("graduates.retention_years", -3, "rules.graduates.retention_years", "sealed for 1 to 10 years"),
    ("graduates.sealed_viewer_roles", ["ghost_role"], "rules.graduates.sealed_viewer_roles.0",
     "This school has no role ghost_role"),
    ("graduates.sealed_viewer_roles", [], "rules.graduates.sealed_viewer_roles", "at least 1"),
    ("data_entry.campus_networks", ["163.23.300.0/24"], "rules.data_entry.campus_networks.0",
     "not a network in CIDR notation"),
    ("data_entry.campus_networks", ["163.23.200.7/24"], "rules.data_entry.campus_networks.0",
     "host bits set; did you mean 163.23.200.0/24"),
    ("data_entry.remote_allowed", False, "rules.data_entry.campus_networks", "List at least one campus network"),
    ("receipt.confirmation_days", 2, "rules.receipt.confirmation_days", "at least 3 days to confirm receipt"),
    ("uploads.description_max_chars", 150, "rules.uploads.description_max_chars",
     "150 characters exceeds the national ceiling of 100 characters"),
    ("performance_summary.max_chars", 801, "rules.performance_summary.max_chars", "national ceiling of 800"),
    ("performance_summary.max_images", 4, "rules.performance_summary.max_images", "national ceiling of 3 images"),
    ("course_outcomes.upload_cap_per_semester", -1, "rules.course_outcomes.upload_cap_per_semester",
     "from 1 to 1000"),
    ("staff_departure.policy", "forget_it", "rules.staff_departure.policy", "Choose one of"),
    ("working_group.convener", "董事長", "rules.working_group.convener", "must be one of the working group's members"),
    ("working_group.min_meetings_per_semester", 0, "rules.working_group.min_meetings_per_semester",
     "at least once per semester"),
    ("working_group.members.0.title", "<script>alert(1)</script>", "rules.working_group.members.0.title",
     "angle brackets"),
    ("trainings.2.audience", "students", "rules.trainings.2.audience", "listed more than once"),
    ("trainings.0.min_per_year", 0, "rules.trainings.0.min_per_year", "1 to 52 times per academic year"),
    # wrong types
    ("course_outcomes.selection_cap", "6", "rules.course_outcomes.selection_cap", "Enter a whole number"),
    ("course_outcomes.selection_cap", 6.5, "rules.course_outcomes.selection_cap", "Enter a whole number"),
    ("course_outcomes.selection_cap", True, "rules.course_outcomes.selection_cap", "Enter a whole number"),
    ("uploads.hyperlinks_allowed", "yes", "rules.uploads.hyperlinks_allowed", "Enter true or false"),
    ("uploads.file_types.pdf", "4MB", "rules.uploads.file_types.pdf", "whole number"),
    ("trainings", "yearly", "rules.trainings", "Enter a list"),
    ("receipt", 3, "rules.receipt", "as an object"),
    ("working_group.convener", None, "rules.working_group.convener", "cannot be empty"),
    # unknown and missing keys
    ("holidays", 7, "rules.holidays", "Unknown rule"),
    ("course_outcomes.max_total", 7, "rules.course_outcomes.max_total", "Unknown rule"),
    ("working_group.members.0.vote", 1, "rules.working_group.members.0.vote", "Unknown rule"),
    ("receipt", DELETE, "rules.receipt", "This rule is required"),
    ("performances.selection_cap_per_year", DELETE, "rules.performances.selection_cap_per_year",
     "This rule is required"),
]


@pytest.mark.parametrize("path, value, field, words", VIOLATIONS,
                         ids=[f"{v[0]}={v[1]!r}"[:60] for v in VIOLATIONS])
def test_each_violation_is_named_and_nothing_is_stored(app, yuanlin, path, value, field, words):
    school, _admin, api, rules = yuanlin
    rules = copy.deepcopy(rules)
    _set(rules, path, value)
    response = api.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "期末校務會議",
                                          "summary": "test", "rules": rules})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert words in error["details"][field], error["details"]
    assert version_count(api) == 5
    assert amend_events(app, school) == []


@pytest.mark.parametrize("body, field, words", [
    ({"adopted_on": "2020-01-01", "adopted_by": "校務會議"}, "adopted_on",
     "is before 2023-01-19, when version 5 was adopted"),
    ({"adopted_on": "2031-02-30", "adopted_by": "校務會議"}, "adopted_on", "YYYY-MM-DD"),
    ({"adopted_on": "2031-01-20", "adopted_by": "   "}, "adopted_by", "Name the meeting"),
    ({"adopted_on": "2031-01-20", "adopted_by": "校" * 121}, "adopted_by", "at most 120 characters"),
    ({"adopted_on": "2031-01-20", "adopted_by": "校務會議", "summary": "x" * 501}, "summary", "at most 500"),
    ({"adopted_on": "2031-01-20", "adopted_by": "校務會議", "extra": 1}, "extra", "Unknown field"),
])
def test_the_adoption_itself_is_validated(app, yuanlin, body, field, words):
    school, _admin, api, rules = yuanlin
    response = api.post("/api/v1/rules", {**body, "rules": rules})
    assert response.status_code == 422
    assert words in response.get_json()["error"]["details"][field]
    assert version_count(api) == 5
    assert amend_events(app, school) == []


def test_a_body_that_is_not_json_is_refused(yuanlin):
    _school, _admin, api, _rules = yuanlin
    response = api.client.post("/api/v1/rules", data="rules", headers=api.headers())
    assert response.status_code == 415
    assert version_count(api) == 5


def test_default_language_gives_the_same_fields(yuanlin):
    _school, _admin, api, rules = yuanlin
    api.lang = None  # zh-TW by default; until the catalogue exists only status and fields are asserted
    rules = copy.deepcopy(rules)
    rules["course_outcomes"]["selection_cap"] = 8
    rules["uploads"]["file_types"]["pdf"] = 5 * MB
    response = api.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "校務會議", "rules": rules})
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert {"rules.course_outcomes.selection_cap", "rules.uploads.file_types.pdf"} <= set(details)
    assert all(isinstance(m, str) and m for m in details.values())


def test_validate_rules_judges_by_the_national_rules_of_the_day(app, yuanlin):
    _school, _admin, _api, rules = yuanlin
    from lp_saas.tenants.rulesets import validate_rules

    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert validate_rules(rules, date(2023, 1, 19)) == {}
        # 6 per year was looser than the 2019 rules' 3 per semester (all six in one semester)
        errors = validate_rules(rules, date(2022, 4, 22))
        assert errors == {"course_outcomes.selection_cap": "The course-outcome selection cap of 6 per academic "
                          "year exceeds the national ceiling of 3 per semester."}
        older = copy.deepcopy(rules)
        older["course_outcomes"].update(selection_cap=3, selection_period="semester")
        assert validate_rules(older, date(2022, 4, 22)) == {}
        assert validate_rules(older, date(2023, 1, 19)) == {}  # 3 + 3 a year is within 6 a year
        assert validate_rules("rules", date(2023, 1, 19)) == {"": "Enter the rules as an object."}


# --- amendments ---------------------------------------------------------------------------------

def test_an_amendment_is_a_new_version_in_force_from_its_date_and_audited(app, yuanlin):
    school, admin, api, rules = yuanlin
    day = date.today() + timedelta(days=30)
    stricter = copy.deepcopy(rules)
    stricter["course_outcomes"]["selection_cap"] = 4
    stricter["uploads"]["file_types"]["pdf"] = 2 * MB
    stricter["data_entry"] = {"remote_allowed": False, "campus_networks": ["163.23.200.0/24", "2001:288:5400::/48"]}
    response = api.post("/api/v1/rules", {"adopted_on": day.isoformat(), "adopted_by": "期末校務會議",
                                          "summary": "課程學習成果每學年勾選至多 4 件", "rules": stricter})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["version"] == 6 and body["adopted_on"] == day.isoformat() and body["rules"] == stricter

    assert api.get(f"/api/v1/rules?on={(day - timedelta(days=1)).isoformat()}").get_json()["version"] == 5
    assert api.get(f"/api/v1/rules?on={day.isoformat()}").get_json()["rules"]["course_outcomes"]["selection_cap"] == 4
    assert api.get("/api/v1/rules").get_json()["version"] == 5  # scheduled, not yet in force
    assert version_count(api) == 6
    # the older versions are untouched
    history = api.get("/api/v1/rules/history").get_json()["versions"]
    assert history[1]["rules"] == rules and history[1]["superseded_on"] == day.isoformat()

    [(actor, details)] = amend_events(app, school)
    assert actor == admin.username
    assert details["version"] == 6 and details["adopted_on"] == day.isoformat()
    assert "course_outcomes.selection_cap" in details["changed"]
    assert "uploads.file_types" in details["changed"]
    assert "graduates.retention_years" not in details["changed"]

    # a later amendment may share the date, never precede it
    too_early = api.post("/api/v1/rules", {"adopted_on": (day - timedelta(days=1)).isoformat(),
                                           "adopted_by": "校務會議", "rules": rules})
    assert too_early.status_code == 422 and "adopted_on" in too_early.get_json()["error"]["details"]
    same_day = api.post("/api/v1/rules", {"adopted_on": day.isoformat(), "adopted_by": "臨時校務會議", "rules": rules})
    assert same_day.status_code == 201 and same_day.get_json()["version"] == 7
    assert api.get(f"/api/v1/rules?on={day.isoformat()}").get_json()["version"] == 7


def test_the_service_stores_nothing_on_refusal(app, yuanlin):
    school, admin, api, rules = yuanlin
    from lp_saas.accounts.models import User
    from lp_saas.database import db
    from lp_saas.errors import ValidationFailed
    from lp_saas.tenants import rulesets

    with as_tenant(app, school):
        actor = db.session.get(User, (school.id, admin.id))
        bad = copy.deepcopy(rules)
        bad["graduates"]["retention_years"] = 0
        with pytest.raises(ValidationFailed) as failed:
            rulesets.amend(school, actor, data=bad, adopted_on=date(2031, 1, 1), adopted_by="校務會議", summary="")
        assert set(failed.value.details) == {"rules.graduates.retention_years"}
        db.session.rollback()
        assert len(rulesets.history(school.id)) == 5


# --- who may do what ----------------------------------------------------------------------------

def test_a_teacher_reads_the_rules_but_cannot_amend_them(app, yuanlin, make_user, api_for, signed_in):
    school, _admin, _api, rules = yuanlin
    teacher = make_user(school, "teacher")
    api = api_for(school, teacher)
    assert api.get("/api/v1/rules").status_code == 200
    assert api.get("/api/v1/rules/history").status_code == 200
    refused = api.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "校務會議", "rules": rules})
    assert refused.status_code == 403

    client = signed_in(school, teacher)
    assert client.get("/admin/rules").status_code == 200
    assert client.get("/admin/rules/amend").status_code == 403
    posted = post_form(client, "/admin/rules/amend", {"adopted_on": "2031-01-20", "adopted_by": "x"},
                       form_path="/account/password")
    assert posted.status_code == 403
    assert "Amend the rules" not in client.get("/admin/rules?lang=en").get_data(as_text=True)
    assert version_count(_api) == 5


def test_a_student_reads_the_rules_in_force_only(yuanlin, make_user, api_for, signed_in):
    school, _admin, _api, _rules = yuanlin
    student = make_user(school, "student")
    api = api_for(school, student)
    assert api.get("/api/v1/rules").status_code == 200
    assert api.get("/api/v1/rules/history").status_code == 403
    assert api.get("/api/v1/rules/1").status_code == 403
    assert signed_in(school, student).get("/admin/rules").status_code == 403


def test_without_a_token_there_is_nothing(yuanlin, api_for):
    school, _admin, _api, rules = yuanlin
    anonymous = api_for(school)
    assert anonymous.get("/api/v1/rules").status_code == 401
    assert anonymous.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "x", "rules": rules}).status_code == 401


def test_another_schools_token_is_worth_nothing_here(yuanlin, make_school, make_user, api_for):
    school, _admin, api, rules = yuanlin
    other = make_school("moe")
    other_admin = api_for(other, make_user(other, "school_admin"))
    intruder = api_for(school)
    intruder.token = other_admin.token
    assert intruder.get("/api/v1/rules").status_code == 401
    assert intruder.get("/api/v1/rules/history").status_code == 401
    assert intruder.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "x", "rules": rules}).status_code == 401
    # each school sees its own versions only
    assert version_count(other_admin) == 1
    assert version_count(api) == 5


def test_another_schools_session_is_worth_nothing_here(yuanlin, make_school, make_user, signed_in, app):
    school, _admin, _api, _rules = yuanlin
    other = make_school("moe")
    client = signed_in(other, make_user(other, "school_admin"))
    # the same browser, cookie and all, at this school's host
    for cookie in list(client._cookies.values()):
        client.set_cookie(cookie.key, cookie.value, domain=f"{school.slug}.localhost")
    response = client.get("/admin/rules", base_url=f"http://{school.slug}.localhost")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- pages --------------------------------------------------------------------------------------

class FormReader(HTMLParser):
    """What a browser would submit for the page's amend form, unchanged."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select = None
        self._textarea = None
        self._text = ""
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("data-testid") == "amend-form":
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            else:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a["value"]))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data):
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, self._text))
            self._textarea = None


def read_form(html: str) -> dict[str, list[str]]:
    reader = FormReader()
    reader.feed(html)
    out: dict[str, list[str]] = {}
    for name, value in reader.fields:
        out.setdefault(name, []).append(value)
    return out


def test_the_rules_page_shows_the_version_in_force_and_its_history(yuanlin, signed_in):
    school, admin, _api, _rules = yuanlin
    client = signed_in(school, admin)
    page = client.get("/admin/rules")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="rules-in-force"' in html
    for roc in ("112年1月19日", "111年4月22日", "110年8月19日", "108年8月29日", "108年8月15日"):
        assert roc in html
    assert "期末校務會議通過" in html and "圖書館" in html and "輔導處" in html
    english = client.get("/admin/rules?lang=en").get_data(as_text=True)
    assert "Version 5 is in force" in english and "2023-01-19" in english
    assert "sealed for 3 years after graduation" in english
    assert "18 members" in english

    version_page = client.get("/admin/rules/5?lang=en")
    assert version_page.status_code == 200
    assert "Changes from version 4" in version_page.get_data(as_text=True)
    assert "course_outcomes.selection_cap" in version_page.get_data(as_text=True)
    assert client.get("/admin/rules/1").status_code == 200
    assert client.get("/admin/rules/99").status_code == 404


def _amend_page_form(client) -> dict[str, list[str]]:
    page = client.get("/admin/rules/amend")
    assert page.status_code == 200
    form = read_form(page.get_data(as_text=True))
    assert form["csrf_token"][0]
    return form


def test_the_amend_form_round_trips_the_rules_unchanged(yuanlin, signed_in):
    school, admin, api, rules = yuanlin
    client = signed_in(school, admin)
    form = _amend_page_form(client)
    assert form["rules.course_outcomes.selection_cap"] == ["6"]
    assert form["rules.uploads.file_types.pdf"] == ["4"]
    form["adopted_on"] = ["2031-01-20"]
    form["adopted_by"] = ["期末校務會議"]
    form["summary"] = ["文字修正"]
    response = client.post("/admin/rules/amend", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    assert response.headers["Location"].endswith("/admin/rules/6")
    stored = api.get("/api/v1/rules?on=2031-01-20").get_json()
    assert stored["version"] == 6 and stored["rules"] == rules and stored["summary"] == "文字修正"


def test_the_amend_form_shows_each_message_beside_its_field_and_stores_nothing(app, yuanlin, signed_in):
    school, admin, api, _rules = yuanlin
    client = signed_in(school, admin)
    form = _amend_page_form(client)
    form.update({
        "adopted_on": ["2031-01-20"], "adopted_by": [""],
        "rules.course_outcomes.selection_cap": ["8"],
        "rules.uploads.file_types.pdf": ["5"],
        "rules.uploads.file_types.mp3": ["lots"],
        "rules.course_outcomes.upload_window_days": ["7"],
        "rules.graduates.retention_years": ["0"],
        "rules.data_entry.campus_networks": ["163.23.200.0/24\nnot-a-network"],
        "rules.working_group.members.0.title": ["董事"],
        "rules.trainings.parents.unit": [""],
    })
    response = client.post("/admin/rules/amend?lang=en", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    for field, words in [
        ("rules.course_outcomes.selection_cap", "exceeds the national ceiling of 6 per academic year"),
        ("rules.uploads.file_types.pdf", "5 MB, exceeds the national ceiling of 4 MB"),
        ("rules.uploads.file_types.mp3", "Enter the size in MB"),
        ("rules.course_outcomes.upload_window_days", "shorter than the national minimum of 14 days"),
        ("rules.graduates.retention_years", "sealed for 1 to 10 years"),
        ("rules.data_entry.campus_networks", "not a network in CIDR notation"),
        ("rules.working_group.convener", "must be one of the working group"),
        ("rules.trainings.parents.unit", "cannot be empty"),
        ("adopted_by", "Name the meeting"),
    ]:
        marker = f'data-field="{field}'
        assert marker in html, field
        beside = html[html.index(marker):html.index(marker) + 400]
        assert words in beside, (field, beside)
    # what the user typed is shown again
    assert 'value="8"' in html and "not-a-network" in html
    assert version_count(api) == 5
    assert amend_events(app, school) == []


def test_the_amend_form_needs_its_csrf_token(yuanlin, signed_in):
    school, admin, api, _rules = yuanlin
    client = signed_in(school, admin)
    form = _amend_page_form(client)
    form.update({"adopted_on": ["2031-01-20"], "adopted_by": ["校務會議"]})
    del form["csrf_token"]
    assert client.post("/admin/rules/amend", data=form).status_code == 400
    form["csrf_token"] = ["forged"]
    assert client.post("/admin/rules/amend", data=form).status_code == 400
    assert version_count(api) == 5


def test_the_amend_form_changes_only_what_was_changed(yuanlin, signed_in):
    school, admin, api, rules = yuanlin
    client = signed_in(school, admin)
    form = _amend_page_form(client)
    form.update({"adopted_on": ["2031-01-20"], "adopted_by": ["期末校務會議"],
                 "rules.course_outcomes.selection_cap": ["5"], "rules.uploads.file_types.mp4": [""],
                 "rules.uploads.file_types.pdf": ["2.5"]})
    titles = form["rules.working_group.members.0.title"]
    form["rules.working_group.members.0.title"] = [""]
    form["rules.working_group.members.0.count"] = [""]  # removes 校長 … who is the convener
    response = client.post("/admin/rules/amend?lang=en", data=form)
    assert response.status_code == 422
    assert 'data-field="rules.working_group.convener"' in response.get_data(as_text=True)
    form["rules.working_group.members.0.title"] = titles
    form["rules.working_group.members.0.count"] = ["1"]
    assert client.post("/admin/rules/amend", data=form).status_code == 302
    stored = api.get("/api/v1/rules?on=2031-01-20").get_json()["rules"]
    expected = copy.deepcopy(rules)
    expected["course_outcomes"]["selection_cap"] = 5
    expected["uploads"]["file_types"] = {"pdf": int(2.5 * MB), "jpg": 4 * MB, "png": 4 * MB, "mp3": 10 * MB}
    assert stored == expected
    assert "2.5 MB" in client.get("/admin/rules/6?lang=en").get_data(as_text=True)


def test_the_rules_endpoints_are_in_the_openapi_document(yuanlin):
    _school, _admin, api, _rules = yuanlin
    doc = api.get("/api/v1/openapi.json").get_json()
    assert {"get", "post"} <= set(doc["paths"]["/rules"])
    assert "get" in doc["paths"]["/rules/history"]
    assert "AmendRequest" in doc["components"]["schemas"]


def test_a_scheduled_version_is_announced_on_the_rules_page(yuanlin, signed_in):
    school, admin, api, rules = yuanlin
    day = date.today() + timedelta(days=60)
    assert api.post("/api/v1/rules", {"adopted_on": day.isoformat(), "adopted_by": "期末校務會議",
                                      "rules": rules}).status_code == 201
    client = signed_in(school, admin)
    html = client.get("/admin/rules?lang=en").get_data(as_text=True)
    assert "Version 5 is in force" in html
    assert f"comes into force on {day.isoformat()}" in html
    assert "Scheduled" in html
    assert "The rules themselves did not change." in client.get("/admin/rules/6?lang=en").get_data(as_text=True)
    # the amend form starts from the newest version, and not before its date
    form = read_form(client.get("/admin/rules/amend").get_data(as_text=True))
    assert form["adopted_on"] == [day.isoformat()]


def test_two_amendments_at_once_do_not_share_a_version(yuanlin, monkeypatch):
    _school, _admin, api, rules = yuanlin
    from lp_saas.tenants import rulesets

    # as if another amendment had been stored between reading the latest version and saving
    real_latest = rulesets.latest
    monkeypatch.setattr(rulesets, "latest", lambda tenant_id: rulesets.get_version(tenant_id, 4))
    response = api.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "校務會議", "rules": rules})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "rules_conflict"
    monkeypatch.setattr(rulesets, "latest", real_latest)
    assert version_count(api) == 5
    assert api.post("/api/v1/rules", {"adopted_on": "2031-01-20", "adopted_by": "校務會議",
                                      "rules": rules}).status_code == 201
