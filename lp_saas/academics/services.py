"""Classes and memberships (issue 3 grows this into the full academic structure)."""
from __future__ import annotations

import sqlalchemy as sa

from lp_saas.academics.models import ClassMembership, SchoolClass
from lp_saas.database import db, utcnow
from lp_saas.i18n import TAIPEI, academic_term


def current_academic_year() -> int:
    return academic_term(utcnow().astimezone(TAIPEI).date())[0]


def get_or_create_class(tenant, name: str, academic_year: int | None = None, grade: int | None = None) -> SchoolClass:
    year = academic_year or current_academic_year()
    school_class = db.session.scalar(sa.select(SchoolClass).where(
        SchoolClass.tenant_id == tenant.id, SchoolClass.academic_year == year, SchoolClass.name == name))
    if school_class is None:
        guess = grade or ({"1": 10, "2": 11, "3": 12}.get(name[:1], 10))
        school_class = SchoolClass(tenant_id=tenant.id, academic_year=year, name=name, grade=guess)
        db.session.add(school_class)
        db.session.flush()
    return school_class


def place_in_class(tenant, actor, student, class_name: str, academic_year: int | None = None) -> SchoolClass:
    """Put ``student`` in the class named ``class_name`` of the year (created if new). Idempotent."""
    school_class = get_or_create_class(tenant, class_name, academic_year)
    if db.session.get(ClassMembership, (tenant.id, school_class.id, student.id)) is None:
        db.session.add(ClassMembership(tenant_id=tenant.id, class_id=school_class.id, student_id=student.id))
        db.session.flush()
    return school_class
