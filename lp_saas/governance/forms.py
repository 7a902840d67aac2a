"""Page forms of the governance records: CSRF and fields; the services judge the values."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import FileField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from lp_saas.forms import Form


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class MemberForm(Form):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)])
    group_role = SelectField(_l("Role in the group"), validate_choice=False)
    submit = SubmitField(_l("Add member"))


class MeetingForm(Form):
    held_on = StringField(_l("Date"), validators=[Optional(), Length(max=20)])
    kind = SelectField(_l("Kind of meeting"), validate_choice=False)
    title = StringField(_l("Meeting"), validators=[Optional(), Length(max=300)])
    minutes = FileField(_l("Minutes (PDF, at most 10 MB)"))
    rule_sets = CheckboxList(_l("Supplementary-rule versions it adopted"), validate_choice=False)
    submit = SubmitField(_l("Save meeting"))


class TrainingForm(Form):
    audience = SelectField(_l("Audience"), validate_choice=False)
    held_on = StringField(_l("Date"), validators=[Optional(), Length(max=20)])
    unit = StringField(_l("Held by (unit)"), validators=[Optional(), Length(max=200)])
    title = StringField(_l("Training title"), validators=[Optional(), Length(max=300)])
    attendees = StringField(_l("Attendees"), validators=[Optional(), Length(max=10)])
    submit = SubmitField(_l("Add training"))
