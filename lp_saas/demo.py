"""``flask demo``: a demo platform on whatever database is configured (idempotent).

Two schools, one per role-matrix template, each with an account for every role, classes with their
homeroom teacher, the current academic year's two terms (dates and semester-end ceremonies, so the
upload, certification and selection windows are open today), courses of both semesters with teacher
and deputy, enrolments and a parent–child link; then a portfolio:

- course outcomes in every status (``awaiting_upload``, ``verifying``, ``submitted``,
  ``file_rejected``, ``certified``, ``returned``, ``withdrawn``), made through the real services
  (``portfolio.outcomes``): links, and PDF files whose bytes go to the school's bucket and are checked
  by the verification job's own handler, run inline (a ``verifying`` one is left for the reconciling
  sweep, as a worker that has not come round yet would leave it);
- diverse performance of several categories from the three sources (student, school, outside
  organiser), self-statements, a performance summary and a selection of certified outcomes;
- governance records: working-group members, a meeting with its minutes, trainings;

and on the platform a regional office overseeing both schools, its officer and an operator.

Idempotent: everything is found before it is made, and a school's portfolio is seeded once per
academic year (skipped when the demo students already have items of that year). The output is the
same on every run.
"""
from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app

from lp_saas import clock
from lp_saas.academics.models import Course, Enrollment, ParentLink, Term
from lp_saas.academics.services import get_or_create_class, place_in_class
from lp_saas.accounts import services as accounts
from lp_saas.database import db
from lp_saas.i18n import TAIPEI, academic_term
from lp_saas.roles.templates import TEMPLATES
from lp_saas.tenants import services as tenants
from lp_saas.tenants.context import tenant_scope

DEMO_PASSWORD = "lp-demo-2024"
ACTOR = "system:demo"

SCHOOLS = (
    {"slug": "ylsh", "name": "國立員林高級中學", "name_en": "National Yuanlin Senior High School",
     "school_code": "074308", "template": "yuanlin", "primary_color": "#7a1f3d", "accent_color": "#e0b04b",
     "motto": "誠 正 勤 樸"},
    {"slug": "demo", "name": "示範市立高級中學", "name_en": "Demo Municipal Senior High School",
     "school_code": "313301", "template": "moe", "primary_color": "#1d4e89", "accent_color": "#f2a900",
     "motto": "自主 互動 共好"},
)

# username → (display name, role keys)
PEOPLE = {
    "admin": ("系統管理者 林怡君", ["school_admin"]),
    "registrar": ("註冊組長 陳建宏", ["registrar"]),
    "teacher1": ("數學科 張雅婷老師", ["teacher"]),
    "teacher2": ("國文科 李明哲老師", ["teacher"]),
    "homeroom": ("301 導師 黃淑芬老師", ["teacher", "homeroom_teacher"]),
    "counselor": ("課程諮詢 吳佳蓉老師", ["teacher", "course_counselor"]),
    "student1": ("王小明", ["student"]),
    "student2": ("林小華", ["student"]),
    "student3": ("陳美玲", ["student"]),
    "parent1": ("王大同（王小明家長）", ["parent"]),
    "homeroom2": ("302 導師 許文彥老師", ["teacher", "homeroom_teacher"]),
}
UNIT_PEOPLE = {
    "academic": ("教學組長 周志明", ["academic_affairs"]),
    "activities": ("訓育組長 鄭文雄", ["student_activities"]),
    "clubs": ("社團活動組長 許雅琪", ["clubs"]),
    "discipline": ("生輔組長 郭志豪", ["discipline"]),
    "guidance": ("輔導主任 蔡佩珊", ["guidance"]),
    "library": ("資訊媒體組長 楊宗翰", ["library_media"]),
}
STUDENTS = ("student1", "student2", "student3")
# code → (name, teacher, deputy, credits)
COURSES = {
    "MATH": ("數學", "teacher1", "teacher2", 4),
    "CHIN": ("國語文", "teacher2", "teacher1", 4),
    "INQ": ("自然科學探究與實作", "counselor", "teacher2", 2),
}

# --- the platform ------------------------------------------------------------------------------------

OFFICE = {"code": "DEMO-EDU", "name": "示範區域教育處"}
PLATFORM_PEOPLE = (  # username, kind, display name
    ("operator", "operator", "平台值班工程師 劉建國"),
    ("officer", "office_officer", "示範區域教育處 督學 何淑貞"),
)

# --- the portfolio (current semester) -----------------------------------------------------------------

# (student, course, the status it ends in, how it is handed in: link | pdf | bad_pdf, title, description)
OUTCOMES = (
    ("student1", "MATH", "certified", "pdf", "數學建模：校園午餐排隊人流分析",
     "以等候理論估計各時段排隊時間，提出分流建議。"),
    ("student1", "CHIN", "certified", "link", "〈背影〉閱讀心得與親情書寫", "比較朱自清與自身經驗的書寫。"),
    ("student1", "INQ", "submitted", "link", "河川水質酸鹼值探究", "採樣三處河段並比較酸鹼值變化。"),
    ("student2", "MATH", "returned", "link", "統計圖表分析：班級睡眠時間", "問卷調查與盒狀圖分析。"),
    ("student2", "CHIN", "file_rejected", "bad_pdf", "古典詩詞朗讀報告", "朗讀與賞析。"),
    ("student2", "INQ", "withdrawn", "link", "植物向光性觀察（舊版）", "已改以新題目上傳。"),
    ("student3", "MATH", "awaiting_upload", "pdf", "機率遊戲設計", "設計公平的擲骰遊戲並驗證。"),
    ("student3", "CHIN", "verifying", "pdf", "地方文史採訪稿", "訪問社區耆老的口述歷史。"),
    ("student3", "INQ", "certified", "link", "簡易太陽能車製作", "比較不同角度太陽能板的效率。"),
)
RETURN_REASON = "請補上問卷題目與資料來源，再重新上傳。"
CERTIFY_COMMENT = "確為學生本人作品。"
# earlier certified work, seeded in semester 1 (under the clock of that semester) when today is in semester 2
EARLIER_OUTCOMES = (
    ("student1", "MATH", "數列與級數專題：複利與貸款", "以等比級數計算不同貸款方案的總利息。"),
    ("student3", "CHIN", "現代詩創作與自評", "創作三首現代詩並說明意象。"),
)

# (student, source, category, title, proof: link | pdf | pending_pdf | None, details(day), organiser name)
PERFORMANCES = (
    ("student1", "student", "cadre", "班級學藝股長", "link",
     lambda d: {"unit": "301班", "position": "學藝股長", "level": "class", "start_date": d(90)}, None),
    ("student1", "student", "competition", "全國高中數學建模競賽 佳作", "pdf",
     lambda d: {"level": "national", "award": "佳作", "result_date": d(30), "group": "高中組",
                "participation": "team"}, None),
    ("student1", "school", "service_learning", "圖書館志工服務", None,
     lambda d: {"organiser": "本校圖書館", "hours": 12, "start_date": d(80), "end_date": d(20)}, None),
    ("student1", "school", "group_activity", "天文社社團活動", None,
     lambda d: {"type": "club", "periods": 18}, None),
    ("student1", "organiser", "certificate", "全民英檢中級初試通過", None,
     lambda d: {"code": "GEPT-I", "type": "language", "score": "中級初試", "obtained_on": d(45)},
     "財團法人語言訓練測驗中心"),
    ("student2", "student", "work_product", "校刊封面插畫", "link",
     lambda d: {"name": "校刊封面插畫", "date": d(25)}, None),
    ("student2", "student", "other", "偏鄉教育營隊志工", "pending_pdf",
     lambda d: {"organiser": "彰化縣青年志工中心", "hours": 24, "start_date": d(60), "end_date": d(55)}, None),
    ("student2", "school", "flexible_learning", "自主學習：Python 資料分析", None,
     lambda d: {"type": "self_directed", "periods_per_week": 2, "weeks": 18}, None),
    ("student3", "organiser", "advanced_course", "大學先修課程：微積分（一）", None,
     lambda d: {"institution": "國立中興大學", "credits": 2, "total_hours": 36}, "國立中興大學"),
    ("student3", "student", "workplace_learning", "醫院職場參訪", "link",
     lambda d: {"type": "visit", "employer": "彰化基督教醫院", "job_title": "參訪學生", "hours": 4,
                "start_date": d(15)}, None),
)
STATEMENTS = (
    ("student1", {"kind": "autobiography", "target": "國立臺灣大學 資訊工程學系", "title": "自傳（臺大資工）",
                  "body": "我從國中開始自學程式設計，高中參加數學建模競賽，學會用資料說故事。"}),
    ("student1", {"kind": "study_plan", "target": "國立清華大學 數學系", "title": "學習計畫（清大數學）",
                  "body": "大一打好分析與代數基礎，大二起修習機率與統計，並參與專題研究。"}),
    ("student3", {"kind": "autobiography", "target": "國立成功大學 機械工程學系", "title": "自傳（成大機械）",
                  "body": "製作太陽能車的過程讓我體會到動手實作與反覆測試的樂趣。"}),
)
SUMMARY = ("student1", "三年來我在數學建模、圖書館志工與天文社中學會團隊合作，也確認了自己對資料分析的興趣。")
# (name, title, group role)
MEMBERS = (("林校長", "校長", "convener"), ("陳主任", "教務主任", "executive_secretary"),
           ("黃淑芬", "各年級導師代表", "member"), ("吳佳蓉", "課程諮詢教師代表", "member"))
# (audience, unit, title, attendees, days ago)
TRAININGS = (("students", "圖書館資訊媒體組", "學習歷程檔案上傳操作說明", 320, 40),
             ("teachers", "教務處", "課程學習成果認證研習", 85, 35),
             ("parents", "輔導處", "學習歷程檔案親師說明會", 140, 30))

MINIMAL_PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
               b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


def _pdf(tag: str) -> bytes:
    return MINIMAL_PDF + f"% {tag}\n".encode()


def _file_spec(data: bytes, filename: str) -> dict:
    return {"filename": filename, "size": len(data), "content_type": "application/pdf",
            "sha256": hashlib.sha256(data).hexdigest()}


def _ensure_user(tenant, username, display_name, roles, **extra):
    user = accounts.find_user(tenant.id, username)
    if user is None:
        user = accounts.create_user(tenant, ACTOR, username=username, display_name=display_name,
                                    password=DEMO_PASSWORD, roles=roles, **extra)
    return user


# --- calendar ----------------------------------------------------------------------------------------

def _term_dates(year: int, semester: int, today: date) -> tuple[date, date, date]:
    """(starts, ceremony, ends) of a term; the current one's ceremony is moved past today if needed,
    so that its upload window (counted from the ceremony) is open whatever day the demo runs."""
    ad = year + 1911
    if semester == 1:
        starts, ceremony, ends = date(ad, 8, 1), date(ad + 1, 1, 20), date(ad + 1, 1, 31)
    else:
        starts, ceremony, ends = date(ad + 1, 2, 1), date(ad + 1, 6, 30), date(ad + 1, 7, 31)
    if academic_term(today) == (year, semester) and today > ceremony:
        ceremony = today + timedelta(days=7)
        ends = max(ends, ceremony)
    return starts, ceremony, ends


def _ensure_terms(tenant, year: int, today: date) -> None:
    for semester in (1, 2):
        found = db.session.scalar(sa.select(Term).where(Term.tenant_id == tenant.id, Term.academic_year == year,
                                                        Term.semester == semester))
        if found is None:
            starts, ceremony, ends = _term_dates(year, semester, today)
            db.session.add(Term(tenant_id=tenant.id, academic_year=year, semester=semester, starts_on=starts,
                                ceremony_on=ceremony, ends_on=ends))
    db.session.flush()


# --- the school ----------------------------------------------------------------------------------------

def _seed_school(spec, year: int, semester: int, today: date) -> dict:
    tenant = tenants.find_by_slug(spec["slug"])
    if tenant is None:
        tenant, _ = tenants.create_tenant(slug=spec["slug"], name=spec["name"], name_en=spec["name_en"],
                                          school_code=spec["school_code"], template=spec["template"])
        tenant.primary_color, tenant.accent_color, tenant.motto = (
            spec["primary_color"], spec["accent_color"], spec["motto"])
        db.session.commit()
    if tenant.status != "active":
        outcome = tenants.provision_now(tenant)
        if outcome["status"] != "succeeded":
            raise RuntimeError(f"provisioning {spec['slug']} failed: {outcome['error']}")
        tenant = tenants.find_by_slug(spec["slug"])
    people = dict(PEOPLE)
    if "academic_affairs" in TEMPLATES[tenant.template]:
        people.update(UNIT_PEOPLE)
    with tenant_scope(tenant):
        users = {}
        for number, (username, (display_name, roles)) in enumerate(people.items(), start=1):
            extra = {"student_no": f"11{number:04d}"} if roles == ["student"] else {}
            users[username] = _ensure_user(tenant, username, display_name, roles, **extra)
        homeroom_class = get_or_create_class(tenant, "301", year, 12)
        if homeroom_class.homeroom_teacher_id != users["homeroom"].id:
            homeroom_class.homeroom_teacher_id = users["homeroom"].id
        for student in ("student1", "student2"):
            place_in_class(tenant, ACTOR, users[student], "301", year)
        other_class = place_in_class(tenant, ACTOR, users["student3"], "302", year)
        if other_class.homeroom_teacher_id is None:
            other_class.homeroom_teacher_id = users["homeroom2"].id
        if db.session.get(ParentLink, (tenant.id, users["parent1"].id, users["student1"].id)) is None:
            db.session.add(ParentLink(tenant_id=tenant.id, parent_id=users["parent1"].id,
                                      student_id=users["student1"].id))
        _ensure_terms(tenant, year, today)
        courses = {}
        for course_semester in (1, 2):
            for code, (name, teacher, deputy, credits) in COURSES.items():
                full_code = f"{year}-{spec['school_code']}-{code}-12-{course_semester}"
                course = db.session.scalar(sa.select(Course).where(Course.tenant_id == tenant.id,
                                                                   Course.code == full_code))
                if course is None:
                    course = Course(tenant_id=tenant.id, code=full_code, name=name, credits=credits,
                                    academic_year=year, semester=course_semester, grade=12, subject=name,
                                    teacher_id=users[teacher].id, deputy_id=users[deputy].id)
                    db.session.add(course)
                    db.session.flush()
                courses[(code, course_semester)] = course
                for student in STUDENTS:
                    if db.session.get(Enrollment, (tenant.id, course.id, users[student].id)) is None:
                        db.session.add(Enrollment(tenant_id=tenant.id, course_id=course.id,
                                                  student_id=users[student].id))
        db.session.flush()
        if not _has_portfolio(tenant, users, year):
            _seed_portfolio(tenant, users, courses, year, semester, today)
        _seed_governance(tenant, users["admin"], year, semester, today)
        db.session.commit()
    return {"tenant": tenant, "people": people}


# --- the portfolio --------------------------------------------------------------------------------------

def _has_portfolio(tenant, users, year: int) -> bool:
    from lp_saas.portfolio.models import CourseOutcome, Performance

    ids = [users[s].id for s in STUDENTS]
    for model in (CourseOutcome, Performance):
        if db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
                model.tenant_id == tenant.id, model.student_id.in_(ids), model.academic_year == year)):
            return True
    return False


def _send_file(tenant, item, data: bytes, *, verify: bool) -> None:
    """The student's bytes arrive in storage and the client reports them; with ``verify`` the
    verification job's handler checks them now (no worker needed), moving the item on."""
    from lp_saas.portfolio import files
    from lp_saas.portfolio.models import StoredFile
    from lp_saas.storage import get_storage

    stored = db.session.get(StoredFile, (tenant.id, item.file_id))
    get_storage().put_bytes(tenant.bucket, stored.key, data, stored.content_type)
    stored.status, stored.uploaded_at = "verifying", clock.now()
    item.status = "verifying"
    db.session.flush()
    if verify:
        files.verify_file_job(SimpleNamespace(args={"file_id": str(stored.id)}), lambda _percent: None)
        db.session.flush()


def _outcome(tenant, users, by_id, course, student, status, kind, title, description):
    """One course outcome taken to ``status`` through the student's and the teacher's services."""
    from lp_saas.portfolio import outcomes

    actor = users[student]
    data = None
    if kind == "link":
        handed_in = {"link": f"https://drive.example.org/demo/{student}/{course.code}"}
    elif kind == "bad_pdf":  # a renamed text file: size and hash match, its content is no PDF
        data = f"{title}：其實是改了副檔名的文字檔。\n".encode()
        handed_in = {"file": _file_spec(data, f"{title}.pdf")}
    else:
        data = _pdf(f"{student} {course.code}")
        handed_in = {"file": _file_spec(data, f"{title}.pdf")}
    outcome, _upload = outcomes.create_outcome(tenant, actor, course_id=course.id, title=title,
                                               description=description, **handed_in)
    if data is not None and status != "awaiting_upload":
        _send_file(tenant, outcome, data, verify=status != "verifying")
    teacher = by_id[course.teacher_id]
    if status == "certified":
        outcomes.certify(tenant, teacher, outcome, CERTIFY_COMMENT)
    elif status in ("returned", "withdrawn"):
        outcomes.return_outcome(tenant, teacher, outcome, RETURN_REASON)
        if status == "withdrawn":
            outcomes.withdraw(tenant, actor, outcome)
    if outcome.status != status:
        raise RuntimeError(f"demo outcome {title!r} ended {outcome.status}, not {status} ({outcome.status_reason})")
    return outcome


def _seed_portfolio(tenant, users, courses, year: int, semester: int, today: date) -> None:
    from lp_saas.portfolio import performances, selection, statements
    from lp_saas.portfolio.performances import academic_year_bounds

    by_id = {user.id: user for user in users.values()}
    if semester == 2:  # the first semester's certified work, handed in and certified back then
        first_day = _term_dates(year, 1, today)[0]
        with clock.frozen(datetime.combine(first_day + timedelta(days=100), time(10, 0), TAIPEI)):
            for student, code, title, description in EARLIER_OUTCOMES:
                _outcome(tenant, users, by_id, courses[(code, 1)], student, "certified", "link", title, description)
    for student, code, status, kind, title, description in OUTCOMES:
        _outcome(tenant, users, by_id, courses[(code, semester)], student, status, kind, title, description)

    year_start = academic_year_bounds(year)[0]

    def day(days_ago: int) -> str:
        return max(year_start, today - timedelta(days=days_ago)).isoformat()

    recorder = users.get("activities") or users["registrar"]
    for student, source, category, title, proof, details, organiser in PERFORMANCES:
        data = {"category": category, "title": title, "academic_year": year, "details": details(day)}
        actor = users[student]
        if source != "student":
            actor = recorder if source == "school" else users["registrar"]
            data.update(student_id=str(users[student].id), source=source)
            if organiser:
                data["organiser_name"] = organiser
        file_data = None
        if proof == "link":
            data["link"] = f"https://drive.example.org/demo/{student}/{category}"
        elif proof in ("pdf", "pending_pdf"):
            file_data = _pdf(f"{student} {category}")
            data["file"] = _file_spec(file_data, f"{title}.pdf")
        item, _upload = performances.create_performance(tenant, actor, data)
        if proof == "pdf":
            _send_file(tenant, item, file_data, verify=True)

    for student, fields in STATEMENTS:
        statements.create_statement(tenant, users[student], dict(fields))
    statements.save_summary(tenant, users[SUMMARY[0]], SUMMARY[1])

    chooser = users["student1"]
    outcome_ids, item_ids = selection.selectable(tenant.id, chooser.id, year)
    selection.replace_selection(tenant, chooser, year, {"outcome_ids": [str(o.id) for o in outcome_ids],
                                                        "performance_ids": [str(p.id) for p in item_ids]})
    db.session.flush()


# --- governance -------------------------------------------------------------------------------------------

def _seed_governance(tenant, admin, year: int, semester: int, today: date) -> None:
    from lp_saas.governance import services as governance
    from lp_saas.governance.models import Meeting, Training, WorkingGroupMember

    def count(model) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(model.tenant_id == tenant.id))

    if not count(WorkingGroupMember):
        for name, title, group_role in MEMBERS:
            governance.add_member(tenant, admin, name=name, title=title, group_role=group_role)
    term_start = _term_dates(year, semester, today)[0]
    if not count(Meeting):
        governance.add_meeting(tenant, admin, held_on=max(term_start, today - timedelta(days=14)),
                               kind="working_group", title="學習歷程檔案工作小組 本學期第一次會議",
                               minutes=("工作小組會議紀錄.pdf", _pdf("minutes")))
    if not count(Training):
        year_start = _term_dates(year, 1, today)[0]
        for audience, unit, title, attendees, days_ago in TRAININGS:
            governance.add_training(tenant, admin, audience=audience, unit=unit, title=title, attendees=attendees,
                                    held_on=max(year_start, today - timedelta(days=days_ago)))
    db.session.flush()


# --- the platform -----------------------------------------------------------------------------------------

def _seed_platform(slugs) -> None:
    from lp_saas.platform import services as platform
    from lp_saas.platform.auth import find_user

    platform.save_office(ACTOR, code=OFFICE["code"], name=OFFICE["name"], slugs=slugs)
    for username, kind, display_name in PLATFORM_PEOPLE:
        if find_user(username) is None:
            platform.create_platform_user(ACTOR, username=username, password=DEMO_PASSWORD, kind=kind,
                                          office_code=OFFICE["code"] if kind == "office_officer" else None,
                                          display_name=display_name)
    db.session.commit()


# --- output -------------------------------------------------------------------------------------------------

def _portfolio_lines(year: int, semester: int) -> list[str]:
    lines = [f"  Portfolio of academic year {year}, semester {semester} (terms of both semesters set; windows open):"]
    for student in STUDENTS:
        states = [status for s, _c, status, *_rest in OUTCOMES if s == student]
        if semester == 2:
            states += ["certified (semester 1)" for s, *_rest in EARLIER_OUTCOMES if s == student]
        items = [f"{category}/{source}" + (" awaiting_upload" if proof == "pending_pdf" else "")
                 for s, source, category, _t, proof, *_rest in PERFORMANCES if s == student]
        extra = []
        if any(s == student for s, _f in STATEMENTS):
            extra.append("self-statements")
        if SUMMARY[0] == student:
            extra.append("summary")
        if student == "student1":
            extra.append("selection (certified outcomes and submitted items)")
        lines.append(f"    {student:<9} outcomes: {', '.join(states)}")
        lines.append(f"    {'':<9} performance: {', '.join(items)}")
        if extra:
            lines.append(f"    {'':<9} also: {', '.join(extra)}")
    lines.append(f"  Governance: {len(MEMBERS)} working-group members, a working-group meeting with minutes, "
                 f"{len(TRAININGS)} trainings (students, teachers, parents)")
    return lines


def seed_demo(echo=print) -> None:
    base = current_app.config["LP_BASE_DOMAIN"]
    port = f":{os.environ.get('PORT', '5000')}" if base == "localhost" else ""
    today = clock.today()
    year, semester = academic_term(today)
    seeded = [_seed_school(spec, year, semester, today) for spec in SCHOOLS]
    _seed_platform([spec["slug"] for spec in SCHOOLS])

    apex = f"http://{base}{port}"
    echo(f"Platform: {apex}/")
    for username, kind, display_name in PLATFORM_PEOPLE:
        where = f"{apex}/console" if kind == "operator" else f"{apex}/office/{OFFICE['code']}"
        echo(f"  {username:<11} {kind:<32} {display_name}  (sign in at {apex}/platform/login, then {where})")
    echo(f"  Regional office {OFFICE['code']} ({OFFICE['name']}) oversees: "
         f"{', '.join(spec['slug'] for spec in SCHOOLS)}; API: {apex}/api/v1/offices/{OFFICE['code']}/schools")
    for school in seeded:
        tenant = school["tenant"]
        echo(f"\n{tenant.name} ({tenant.template}): http://{tenant.slug}.{base}{port}/")
        for username, (display_name, roles) in school["people"].items():
            echo(f"  {username:<11} {','.join(roles):<32} {display_name}")
        for line in _portfolio_lines(year, semester):
            echo(line)
    echo(f"\nEvery demo account's password: {DEMO_PASSWORD}")
