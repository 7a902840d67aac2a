"""The base of every page form: Flask-WTF (CSRF) with WTForms' own messages in Taiwan's Chinese.

WTForms ships ``zh_TW`` and ``zh`` (Simplified) catalogues; gettext expands our locale
``zh_Hant_TW`` to ``zh``, so without this the built-in messages would come out Simplified.
"""
from __future__ import annotations

from babel import support
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms.i18n import messages_path

_CACHE: dict[str, support.Translations] = {}


def wtforms_translations():
    locale = str(get_locale() or "zh_Hant_TW")
    language = "zh_TW" if locale.startswith("zh") else locale.split("_")[0]
    if language not in _CACHE:
        _CACHE[language] = support.Translations.load(messages_path(), [language], domain="wtforms")
    return _CACHE[language]


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return wtforms_translations()
