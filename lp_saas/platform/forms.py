"""Page forms of the platform. They carry the CSRF token and the fields; the services judge the
values (the same checks as the API), so a field has no validator that would speak differently."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (BooleanField, EmailField, FileField, PasswordField, RadioField, SelectField, SelectMultipleField,
                     StringField, SubmitField, TextAreaField)
from wtforms.validators import Length, Optional

from lp_saas.forms import Form


class SignupForm(Form):
    school_name = StringField(_l("School name"), validators=[Optional(), Length(max=200)])
    school_code = StringField(_l("MOE school code"), validators=[Optional(), Length(max=20)])
    school_type = SelectField(_l("School type"), validate_choice=False)
    slug = StringField(_l("Subdomain"), validators=[Optional(), Length(max=60)])
    contact_name = StringField(_l("Contact person"), validators=[Optional(), Length(max=200)])
    contact_email = EmailField(_l("Contact e-mail"), validators=[Optional(), Length(max=300)])
    plan = RadioField(_l("Plan"), validate_choice=False)
    submit = SubmitField(_l("Send the signup"))


class ReasonForm(Form):
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Confirm"))


class PlanForm(Form):
    plan = SelectField(_l("Plan"), validate_choice=False)
    submit = SubmitField(_l("Change plan"))


class OfficeForm(Form):
    code = StringField(_l("Office code"), validators=[Optional(), Length(max=40)])
    name = StringField(_l("Office name"), validators=[Optional(), Length(max=200)])
    schools = SelectMultipleField(_l("Schools it oversees"), validate_choice=False)
    submit = SubmitField(_l("Save office"))


class PlatformUserForm(Form):
    username = StringField(_l("Username"), validators=[Optional(), Length(max=64)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    email = EmailField(_l("E-mail (optional)"), validators=[Optional(), Length(max=300)])
    role = SelectField(_l("Role"), validate_choice=False)
    office = SelectField(_l("Office"), validate_choice=False)
    password = PasswordField(_l("Initial password"), validators=[Optional(), Length(max=128)])
    submit = SubmitField(_l("Create account"))


class SetPasswordForm(Form):
    new_password = PasswordField(_l("New password"), validators=[Optional(), Length(max=128)])
    confirm_password = PasswordField(_l("New password again"), validators=[Optional(), Length(max=128)])
    submit = SubmitField(_l("Set password"))


class BrandingForm(Form):
    primary_color = StringField(_l("Main colour"), validators=[Optional(), Length(max=20)])
    accent_color = StringField(_l("Accent colour"), validators=[Optional(), Length(max=20)])
    logo = FileField(_l("Logo (PNG or JPEG, at most 1 MB)"))
    remove_logo = BooleanField(_l("Remove the logo"))
    submit = SubmitField(_l("Save branding"))
