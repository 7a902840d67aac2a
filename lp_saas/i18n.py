"""Languages (Traditional Chinese first, English second) and ROC calendar formatting."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import g, has_request_context, request
from flask_babel import get_locale

LOCALES = {"zh-TW": "zh_Hant_TW", "zh": "zh_Hant_TW", "en": "en"}
SUPPORTED = ("zh_Hant_TW", "en")
TAIPEI = ZoneInfo("Asia/Taipei")


def select_locale() -> str:
    """?lang= (remembered in a cookie), then the cookie, the user's preference, Accept-Language."""
    if not has_request_context():
        return "zh_Hant_TW"
    for candidate in (request.args.get("lang"), request.cookies.get("lang")):
        if candidate in LOCALES:
            return LOCALES[candidate]
        if candidate in SUPPORTED:
            return candidate
    user = g.get("actor")
    if user is not None and getattr(user, "locale", None) in SUPPORTED:
        return user.locale
    best = request.accept_languages.best_match(["zh-TW", "zh", "en"], default="zh-TW")
    return LOCALES.get(best, "zh_Hant_TW")


def is_english() -> bool:
    return str(get_locale()).startswith("en")


def to_taipei(value: datetime) -> datetime:
    return value.astimezone(TAIPEI)


def roc_year(d: date) -> int:
    return d.year - 1911


def academic_term(d: date) -> tuple[int, int]:
    """(ROC academic year, semester) of a day: semester 1 Aug–Jan, semester 2 Feb–Jul."""
    if d.month >= 8:
        return d.year - 1911, 1
    if d.month == 1:
        return d.year - 1912, 1
    return d.year - 1912, 2


def format_term(academic_year: int, semester: int | None = None) -> str:
    if is_english():
        text = f"academic year {academic_year} (ROC)"
        return f"{text}, semester {semester}" if semester else text
    text = f"{academic_year}學年度"
    return f"{text}第{semester}學期" if semester else text


def format_roc_date(value) -> str:
    """113年8月1日 in Chinese; 2024-08-01 in English. Datetimes are shown in Taiwan time."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_taipei(value).date() if value.tzinfo else value.date()
    if is_english():
        return value.isoformat()
    return f"{roc_year(value)}年{value.month}月{value.day}日"


def format_roc_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    local = to_taipei(value) if value.tzinfo else value
    return f"{format_roc_date(local.date())} {local:%H:%M}"


def init_app(app) -> None:
    app.jinja_env.filters["roc_date"] = format_roc_date
    app.jinja_env.filters["roc_datetime"] = format_roc_datetime
    app.jinja_env.globals["format_term"] = format_term
    app.jinja_env.globals["academic_term"] = academic_term
    app.jinja_env.globals["is_english"] = is_english

    @app.after_request
    def remember_language(response):
        lang = request.args.get("lang")
        if lang in LOCALES or lang in SUPPORTED:
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
        return response
