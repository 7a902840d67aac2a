"""The Traditional Chinese catalogue: complete for the current code, placeholders intact, compiled,
and actually used by the pages (zh-TW by default, English on request).

When a test here fails after a change of wording, run ``scripts/i18n`` and translate what it lists.
"""
from __future__ import annotations

import gettext
import io
import re
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "lp_saas" / "translations"
PO = TRANSLATIONS / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
# The same keywords as scripts/i18n.
KEYWORDS = ["-k", "_l", "-k", "lazy_gettext", "-k", "lazy_ngettext:1,2"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _strings(message) -> tuple:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def _msgid(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


@pytest.fixture(scope="module")
def catalogue():
    with PO.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The msgids of the code as it is now (a fresh extraction, like scripts/i18n does)."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    CommandLineInterface().run(["pybabel", "--quiet", "extract", "-F", str(ROOT / "babel.cfg"), *KEYWORDS,
                                "-o", str(pot), str(ROOT)])
    with pot.open("rb") as fh:
        template = read_po(fh)
    return {_msgid(m): m for m in template if m.id}


def test_the_extraction_finds_the_code(extracted):
    # Guards the guard: an extraction that finds nothing would make the next test pass vacuously.
    assert "Sign in" in extracted  # a template
    assert "The username or password is not correct." in extracted  # a service, lazy_gettext
    assert len(extracted) > 100


def test_every_msgid_has_a_translation(extracted, catalogue):
    problems = []
    for msgid, template in sorted(extracted.items()):
        message = catalogue.get(template.id)
        if message is None:
            problems.append(f"missing: {msgid!r} ({template.locations[0][0]})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif not all(s and s.strip() for s in _strings(message)):
            problems.append(f"untranslated: {msgid!r}")
    assert not problems, "run scripts/i18n and translate:\n" + "\n".join(problems)


def test_translations_keep_their_placeholders(catalogue):
    problems = []
    for message in catalogue:
        if not message.id or not message.string or message.fuzzy:
            continue  # a fuzzy guess is not used (and test_every_msgid_has_a_translation reports it)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(PLACEHOLDER.findall(i) for i in ids))
        for string in _strings(message):
            if set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"{_msgid(message)!r} → {string!r}")
    assert not problems, "placeholders differ:\n" + "\n".join(problems)


def test_translations_are_traditional_chinese(catalogue):
    # A few simplified forms that slip in from other catalogues and are wrong for Taiwan.
    simplified = re.compile("[们这个为对时设册账户码权删录证认]")
    bad = [(_msgid(m), s) for m in catalogue if m.id for s in _strings(m) if simplified.search(s or "")]
    assert not bad, bad


def test_compiled_catalogue_matches_the_po(catalogue):
    """messages.mo is committed: it must be the compilation of messages.po as it is now."""
    fresh = io.BytesIO()
    write_mo(fresh, catalogue)
    fresh.seek(0)
    with MO.open("rb") as fh:
        committed = gettext.GNUTranslations(fh)
    compiled = gettext.GNUTranslations(fresh)
    # the header entry ("") names the Babel version that compiled it: not a translation
    messages = {k: v for k, v in committed._catalog.items() if k != ""}
    assert messages == {k: v for k, v in compiled._catalog.items() if k != ""}, \
        "run scripts/i18n to compile messages.mo"


def test_flask_babel_finds_the_catalogue(app):
    from flask_babel import force_locale, get_translations, gettext as _

    with app.test_request_context("/", base_url="http://localhost"):
        with force_locale("zh_Hant_TW"):
            assert isinstance(get_translations(), gettext.GNUTranslations)  # not a NullTranslations
            assert _("Sign in") == "登入"
            assert _("Sign in to %(school)s", school="國立員林高級中學") == "登入國立員林高級中學"
        with force_locale("en"):
            assert _("Sign in") == "Sign in"


def test_pages_are_chinese_by_default_and_english_on_request(make_school, client_for):
    school = make_school()
    client = client_for(school)

    page = client.get("/login").get_data(as_text=True)
    assert 'lang="zh-Hant-TW"' in page
    assert ">登入</button>" in page
    assert ">帳號</label>" in page  # a form label: a lazy string, translated at render time

    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert 'lang="en"' in page
    assert ">Sign in</button>" in page
    assert ">Username</label>" in page
    # Nothing Chinese but the school's own name (and its initial), and the link back to 中文.
    rest = page.replace(school.name, "").replace(f">{school.name[:1]}<", "><").replace(">中文<", "><")
    assert not CJK.search(rest), CJK.findall(rest)

    page = client.get("/login", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.8"}).get_data(as_text=True)
    assert ">登入</button>" in page


def test_error_messages_follow_the_language(make_school, make_user, client_for):
    from tests.conftest import post_form

    school = make_school()
    user = make_user(school, "student")
    client = client_for(school)
    wrong = {"username": user.username, "password": "not-the-password"}

    page = post_form(client, "/login", wrong).get_data(as_text=True)
    assert "帳號或密碼不正確。" in page
    page = post_form(client, "/login", wrong, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "The username or password is not correct." in page

    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "找不到資料。" in response.get_data(as_text=True)
