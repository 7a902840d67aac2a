from flask_babel import lazy_gettext as _l
from lp_saas.forms import Form
from wtforms import DateField, PasswordField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional


class LoginForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])
    submit = SubmitField(_l("Sign in"))


class PasswordChangeForm(Form):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired()])
    submit = SubmitField(_l("Change password"))


class UserCreateForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(_l("Initial password"), validators=[DataRequired()])
    student_no = StringField(_l("Student number"), validators=[Optional(), Length(max=20)])
    roles = SelectMultipleField(_l("Roles"), validators=[DataRequired()])
    submit = SubmitField(_l("Create account"))


class PasswordResetForm(Form):
    password = PasswordField(_l("Temporary password"), validators=[DataRequired()])
    submit = SubmitField(_l("Reset password"))


class ExpiryForm(Form):
    expires_on = DateField(_l("Account expires on"), validators=[Optional()])
    submit = SubmitField(_l("Save"))


class ConfirmForm(Form):
    """An empty form: a button whose only field is the CSRF token."""

    submit = SubmitField(_l("Confirm"))
