"""Graduation, sealing, legal holds and deletion after retention.

- **Graduation** (``POST /api/v1/graduations``) records the day; a job and the daily sweep seal
  each student from that day on: ``sealed_at`` is set, the student's registration record says
  ``graduated``, and the student's account expires (sessions and tokens end). Sealed data is
  read-only for everyone and readable only by the roles the rule set names
  (``graduates.sealed_viewer_roles``); the one permission check enforces it
  (``roles/permissions.py``).
- **Retention.** With ``graduates.retention_years`` = N (the rules in force on the day of the run),
  data is kept through the N-th anniversary of graduation and deleted from the day after
  (graduated 2025-06-15, N = 3: kept through 2028-06-15, deleted on 2028-06-16 or the first run
  after). A 29 February anniversary falls on 1 March. A legal hold stops deletion while it exists.
- **Deletion** is a state machine per student (:class:`DeletionRecord`): ``started`` (rows counted,
  object keys planned, committed) → ``objects_deleted`` (every version of every object removed;
  storage deletions are idempotent, so a crash here is simply redone) → ``done`` (every row deleted
  in one transaction together with the status change, so rows are never half deleted). Whatever a
  run leaves unfinished, the next run finishes first; a legal hold set meanwhile does not stop a
  deletion that has begun (it cannot be half undone). The finished record keeps category, counts,
  the rule and dates, not the student's id; it is purged after 5 years.
- **Which rows.** Every tenant-owned table is walked from the model metadata, so tables added later
  are covered without a list to maintain: a row belongs to the student when its ``student_id`` is
  the student (the ``users`` row itself by ``id``), or when it references such a row through a
  foreign key with ``ON DELETE CASCADE``. The audit log (append-only by law and by grant),
  the jobs outbox and the deletion records themselves are not student data and stay.

Services flush and never commit, except :func:`delete_student_data`, which is a resumable state
machine and commits each step. The acting user or a system label is an argument (jobs have no request).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.academics.models import ParentLink
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import Conflict, ValidationFailed
from lp_saas.lifecycle.models import DeletionRecord, Graduation, LegalHold

SYSTEM = "system:lifecycle"
CATEGORY = "graduate_portfolio"
DELETION_RECORD_YEARS = 5
#: tables that are not a student's data: the append-only audit log, the outbox, deletion records
NOT_STUDENT_DATA = frozenset({"audit_events", "jobs", "deletion_records"})
#: how far from today a graduation day may be (a typo must not make data due for deletion at once)
GRADUATION_DAY_RANGE = timedelta(days=366)
REASON_MAX = 500
_UNSAFE = re.compile(r"[<>\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- dates -----------------------------------------------------------------------------------------

def add_years(day: date, years: int) -> date:
    """``day`` moved ``years`` on; 29 February becomes 1 March in a common year (never earlier)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def deletion_due_on(graduated_on: date, retention_years: int) -> date:
    """The first day a graduate's data may be deleted: the day after the N-th anniversary."""
    return add_years(graduated_on, retention_years) + timedelta(days=1)


def retention(tenant_id, on: date) -> tuple[int, dict]:
    """(retention years, the rule as recorded on a deletion) in force on ``on``."""
    from lp_saas.tenants.rulesets import current_rules, in_force

    years = current_rules(tenant_id, on)["graduates"]["retention_years"]
    version = in_force(tenant_id, on)
    return years, {"rule": "graduates.retention_years", "retention_years": years,
                   "rule_set_version": version.version if version else None,
                   "rule_set_adopted_on": version.adopted_on.isoformat() if version else None}


# --- graduation and sealing ------------------------------------------------------------------------

def students_of_school(tenant_id, ids) -> set[uuid.UUID]:
    """Which of ``ids`` are accounts of this school holding the ``student`` role (one query)."""
    from lp_saas.roles.models import Role, UserRole

    if not ids:
        return set()
    return set(db.session.scalars(
        sa.select(UserRole.user_id).join(Role, sa.and_(Role.tenant_id == UserRole.tenant_id,
                                                       Role.id == UserRole.role_id))
        .where(UserRole.tenant_id == tenant_id, Role.key == "student", UserRole.user_id.in_(list(ids)))))


def record_graduations(tenant, actor, student_ids: list[uuid.UUID], graduated_on: date) -> dict:
    """Record that students graduate on ``graduated_on`` and submit the sealing job.

    Needs ``lifecycle.manage`` (checked by the caller). Raises ValidationFailed when an id is not a
    student of this school, or the day is more than a year from today. A sealed student keeps their
    day (reported in ``already_sealed``); an unsealed one gets the new day. Flush only; the job is
    sent after the commit. Returns ``{"job", "recorded", "already_sealed"}``.
    """
    from lp_saas.jobs.queue import submit

    wanted = list(dict.fromkeys(student_ids))
    errors = {}
    unknown = [str(i) for i in wanted if i not in students_of_school(tenant.id, wanted)]
    if unknown:
        errors["student_ids"] = str(_l("These are not students of this school: %(ids)s", ids=", ".join(unknown)))
    today = clock.today()
    # a past cohort may be recorded (a school moving onto the platform), but never so far back that its
    # data would be due for deletion at once: a typo must not delete anyone
    from lp_saas.tenants.rulesets import current_rules

    retention = current_rules(tenant.id)["graduates"]["retention_years"]
    if graduated_on > today + GRADUATION_DAY_RANGE:
        errors["graduated_on"] = str(_l("The graduation day must be within a year from today."))
    elif deletion_due_on(graduated_on, retention) <= today:
        errors["graduated_on"] = str(_l(
            "On this graduation day the school's %(years)s-year retention would already have ended and the data "
            "would be deleted at once. Check the date.", years=retention))
    if errors:
        raise ValidationFailed(errors)
    existing = {g.student_id: g for g in db.session.scalars(sa.select(Graduation).where(
        Graduation.tenant_id == tenant.id, Graduation.student_id.in_(wanted)))}
    recorded, sealed = [], []
    for student_id in wanted:
        grad = existing.get(student_id)
        if grad is not None and grad.sealed_at is not None:
            sealed.append(student_id)
            continue
        if grad is None:
            grad = Graduation(tenant_id=tenant.id, student_id=student_id, graduated_on=graduated_on,
                              recorded_at=clock.now(), recorded_by_id=getattr(actor, "id", None))
            db.session.add(grad)
        else:
            grad.graduated_on = graduated_on
        recorded.append(student_id)
        audit.record(tenant.id, actor, "student.graduation_recorded", target_type="user", target_id=student_id,
                     student_id=student_id, details={"graduated_on": graduated_on.isoformat()})
    db.session.flush()
    job = submit(tenant.id, "seal_graduates", {"student_ids": [str(i) for i in recorded]}, created_by=actor) \
        if recorded else None
    return {"job": job, "recorded": recorded, "already_sealed": sealed}


def due_for_sealing(tenant_id, as_of: date, student_ids=None) -> list[Graduation]:
    query = sa.select(Graduation).where(Graduation.tenant_id == tenant_id, Graduation.sealed_at.is_(None),
                                        Graduation.graduated_on <= as_of)
    if student_ids is not None:
        query = query.where(Graduation.student_id.in_(list(student_ids)))
    return list(db.session.scalars(query.order_by(Graduation.graduated_on, Graduation.student_id)))


def seal(tenant, graduation: Graduation, actor=SYSTEM) -> int:
    """Seal one graduate: read-only and restricted from now on; their account expires at once.

    Returns how many sessions and tokens ended. Idempotent (a sealed graduation is left). Flush only.
    """
    from lp_saas.academics.models import StudentRecord
    from lp_saas.accounts.services import end_all_sessions, set_expiry
    from lp_saas.roles import permissions

    if graduation.sealed_at is not None:
        return 0
    now = clock.now()
    graduation.sealed_at = now
    record = db.session.get(StudentRecord, (tenant.id, graduation.student_id))
    if record is not None:
        record.status = "graduated"
    ended = 0
    student = db.session.get(User, (tenant.id, graduation.student_id))
    if student is not None:
        if student.expires_at is None or student.expires_at > now:
            set_expiry(actor, student, now)
        ended = end_all_sessions(student, "sealed")
    audit.record(tenant.id, actor, "student.sealed", target_type="user", target_id=graduation.student_id,
                 student_id=graduation.student_id, details={"graduated_on": graduation.graduated_on.isoformat()})
    db.session.flush()
    permissions.invalidate()
    return ended


def sealed_student_ids_select(tenant_id):
    """``SELECT student_id`` of the school's sealed graduates (for the permission check)."""
    return sa.select(Graduation.student_id).where(Graduation.tenant_id == tenant_id,
                                                  Graduation.sealed_at.is_not(None))


# --- legal holds -----------------------------------------------------------------------------------

def _clean_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed({"reason": str(_l("Give the reason for the hold."))})
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise ValidationFailed({"reason": str(_l("The reason has at most %(max)s characters.", max=REASON_MAX))})
    if _UNSAFE.search(reason):
        raise ValidationFailed({"reason": str(_l("Text may not contain angle brackets or control characters."))})
    return reason


def deletion_in_progress(tenant_id, student_id) -> DeletionRecord | None:
    return db.session.scalar(sa.select(DeletionRecord).where(
        DeletionRecord.tenant_id == tenant_id, DeletionRecord.student_id == student_id,
        DeletionRecord.status != "done"))


def set_legal_hold(tenant, actor, student: User, reason) -> tuple[LegalHold, bool]:
    """Hold a student's data: deletion waits until the hold is released. Returns (hold, created).

    Needs ``lifecycle.manage`` (checked by the caller). Raises ValidationFailed (reason) and
    Conflict when the deletion has already begun (it is finished, never half undone). Flush only.
    """
    reason = _clean_reason(reason)
    if deletion_in_progress(tenant.id, student.id) is not None:
        raise Conflict(_l("This student's data is already being deleted; a hold can no longer stop it."),
                       code="deletion_in_progress")
    hold = db.session.get(LegalHold, (tenant.id, student.id))
    created = hold is None
    if created:
        hold = LegalHold(tenant_id=tenant.id, student_id=student.id, reason=reason, set_at=clock.now(),
                         set_by_id=getattr(actor, "id", None))
        db.session.add(hold)
    else:
        hold.reason = reason
    audit.record(tenant.id, actor, "student.legal_hold_set", target_type="user", target_id=student.id,
                 student_id=student.id, details={"created": created})
    db.session.flush()
    return hold, created


def release_legal_hold(tenant, actor, student: User) -> bool:
    """Release the hold (deletion proceeds at the next run if retention has ended). False if none."""
    hold = db.session.get(LegalHold, (tenant.id, student.id))
    if hold is None:
        return False
    db.session.delete(hold)
    audit.record(tenant.id, actor, "student.legal_hold_released", target_type="user", target_id=student.id,
                 student_id=student.id)
    db.session.flush()
    return True


# --- which rows and objects are a student's --------------------------------------------------------

def _student_predicates(tenant_id, student_id) -> dict:
    """table → SQL condition selecting the student's rows in it (parents before children)."""
    preds: dict = {}
    for table in db.metadata.sorted_tables:
        if table.name in NOT_STUDENT_DATA or "tenant_id" not in table.c:
            continue
        clauses = []
        if table.name == "users":
            clauses.append(table.c.id == student_id)
        elif "student_id" in table.c:
            clauses.append(table.c.student_id == student_id)
        for fk in table.foreign_key_constraints:
            parent = fk.referred_table
            if parent not in preds or (fk.ondelete or "").upper() != "CASCADE":
                continue
            pairs = [(e.parent, e.column) for e in fk.elements if e.parent.name != "tenant_id"]
            if len(pairs) != 1:
                continue
            column, referred = pairs[0]
            clauses.append(column.in_(sa.select(referred).where(parent.c.tenant_id == tenant_id, preds[parent])))
        if clauses:
            preds[table] = sa.and_(table.c.tenant_id == tenant_id, sa.or_(*clauses))
    return preds


@dataclass
class StudentData:
    keys: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def student_data(tenant_id, student_id) -> StudentData:
    """Count a student's rows (per table) and list the keys of their stored objects. Reads only."""
    from lp_saas.portfolio.models import StoredFile

    preds = _student_predicates(tenant_id, student_id)
    found = StudentData()
    for table, pred in preds.items():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(table).where(pred)) or 0
        if count:
            found.counts[table.name] = count
    files = StoredFile.__table__
    if files in preds:
        found.keys = sorted(db.session.scalars(sa.select(files.c.key).where(preds[files])))
    return found


def _owner_prefixes(keys) -> list[str]:
    """``outcomes/<id>/`` folders of the student's items: any stray version under them goes too."""
    prefixes = set()
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 3 and parts[0] and parts[1]:
            prefixes.add(f"{parts[0]}/{parts[1]}/")
    return sorted(prefixes)


# --- retention and deletion ------------------------------------------------------------------------

@dataclass
class DuePlan:
    student_id: uuid.UUID
    graduated_on: date | None  # None once the graduation row itself is gone (a deletion half done)
    due_on: date
    held: bool
    record: DeletionRecord | None = None


def deletion_plan(tenant_id, as_of: date, *, until: date | None = None) -> tuple[list[DuePlan], dict]:
    """Sealed graduates whose data is due for deletion on ``as_of`` (or by ``until``), with holds.

    Returns (plans ordered by due day, the rule in force). Deletions already begun come first.
    """
    years, rule = retention(tenant_id, as_of)
    last = until or as_of
    # a cheap bound in SQL (graduated at least N years before), the exact anniversary in Python
    bound = date(last.year - years, 12, 31) if last.year - years >= 1 else date.min
    rows = db.session.execute(
        sa.select(Graduation.student_id, Graduation.graduated_on, LegalHold.student_id.is_not(None))
        .outerjoin(LegalHold, sa.and_(LegalHold.tenant_id == Graduation.tenant_id,
                                      LegalHold.student_id == Graduation.student_id))
        .where(Graduation.tenant_id == tenant_id, Graduation.sealed_at.is_not(None),
               Graduation.graduated_on <= bound)
        .order_by(Graduation.graduated_on, Graduation.student_id)).all()
    in_progress = {r.student_id: r for r in db.session.scalars(sa.select(DeletionRecord).where(
        DeletionRecord.tenant_id == tenant_id, DeletionRecord.status != "done")) if r.student_id is not None}
    days = dict(db.session.execute(sa.select(Graduation.student_id, Graduation.graduated_on).where(
        Graduation.tenant_id == tenant_id, Graduation.student_id.in_(list(in_progress)))).all()) if in_progress else {}
    plans = [DuePlan(r.student_id, days.get(r.student_id), r.due_on, False, r) for r in in_progress.values()]
    for student_id, graduated_on, held in rows:
        if student_id in in_progress:
            continue
        due_on = deletion_due_on(graduated_on, years)
        if due_on <= last:
            plans.append(DuePlan(student_id, graduated_on, due_on, bool(held)))
    plans.sort(key=lambda p: (p.record is None, p.due_on, str(p.student_id)))
    return plans, rule


def delete_student_data(tenant, student_id: uuid.UUID, *, due_on: date, rule: dict,
                        actor_label: str = SYSTEM) -> DeletionRecord:
    """Delete every row and every stored object (all versions) of a student; resumable.

    Commits after each step (see the module docstring). Raises StorageError / database errors
    from a step; the record then stays at its last finished step and the next call goes on from there.
    """
    from lp_saas.storage import get_storage

    record = deletion_in_progress(tenant.id, student_id)
    if record is None:
        found = student_data(tenant.id, student_id)
        record = DeletionRecord(tenant_id=tenant.id, id=uuid.uuid4(), category=CATEGORY, status="started",
                                student_id=student_id, due_on=due_on, rule=rule, planned_keys=found.keys,
                                objects=len(found.keys), rows=found.rows, counts=found.counts,
                                actor_label=actor_label, started_at=clock.now(), attempts=0, object_versions=0)
        db.session.add(record)
        audit.record(tenant.id, actor_label, "student.deletion_started", target_type="deletion",
                     target_id=record.id, student_id=student_id,
                     details={"objects": record.objects, "rows": record.rows})
    record.attempts += 1
    db.session.commit()

    if record.status == "started":
        storage = get_storage()
        keys = list(record.planned_keys or [])
        for key in keys:
            record.object_versions += storage.delete_object(tenant.bucket, key)
            db.session.commit()  # progress: a crash after this key resumes at the same state
        for prefix in _owner_prefixes(keys):
            record.object_versions += storage.delete_prefix(tenant.bucket, prefix)
        record.status = "objects_deleted"
        db.session.commit()

    if record.status == "objects_deleted":
        _delete_rows(tenant, record, student_id, actor_label)
    return record


def _delete_rows(tenant, record: DeletionRecord, student_id, actor_label) -> None:
    """The last step, in one transaction: objects that appeared since the plan, every row, done."""
    from lp_saas.storage import get_storage

    claimed = db.session.execute(
        sa.update(DeletionRecord).where(DeletionRecord.tenant_id == tenant.id, DeletionRecord.id == record.id,
                                        DeletionRecord.status == "objects_deleted")
        .values(status="done").execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # another run finished it meanwhile
        db.session.rollback()
        return
    late = student_data(tenant.id, student_id).keys
    planned = set(record.planned_keys or [])
    storage = get_storage()
    for key in late:
        if key not in planned:
            record.object_versions += storage.delete_object(tenant.bucket, key)
            record.objects += 1
    preds = _student_predicates(tenant.id, student_id)
    parents = set(db.session.scalars(sa.select(ParentLink.parent_id).where(
        ParentLink.tenant_id == tenant.id, ParentLink.student_id == student_id)))
    counts: dict[str, int] = {}
    for table in reversed(list(preds)):
        deleted = db.session.execute(table.delete().where(preds[table])).rowcount or 0
        if deleted:
            counts[table.name] = deleted
    _close_orphaned_parents(tenant, parents, actor_label)
    today = clock.today()
    record.status = "done"
    record.counts = counts
    record.rows = sum(counts.values())
    record.student_id = None
    record.planned_keys = None
    record.finished_at = clock.now()
    record.keep_until = add_years(today, DELETION_RECORD_YEARS)
    audit.record(tenant.id, actor_label, "student.data_deleted", target_type="deletion", target_id=record.id,
                 student_id=student_id, details={"objects": record.objects, "rows": record.rows,
                                                 "rule": record.rule})
    db.session.commit()
    db.session.expire_all()


def _close_orphaned_parents(tenant, parent_ids: set, actor_label: str) -> None:
    """A parent account exists to read its children's portfolios: once the last child's data is gone, it is
    disabled and its sessions end (the school may delete it; its own data is the parent's, not the child's)."""
    from lp_saas.accounts.services import end_all_sessions

    if not parent_ids:
        return
    still_linked = set(db.session.scalars(sa.select(ParentLink.parent_id).where(
        ParentLink.tenant_id == tenant.id, ParentLink.parent_id.in_(parent_ids))))
    for parent_id in sorted(parent_ids - still_linked, key=str):
        parent = db.session.get(User, (tenant.id, parent_id))
        if parent is None or parent.status != "active":
            continue
        parent.status = "disabled"
        end_all_sessions(parent, "disabled")
        audit.record(tenant.id, actor_label, "user.disabled", target_type="user", target_id=parent.id,
                     details={"reason": "no_children_left"})


def deletion_records(tenant_id, limit: int = 200) -> list[DeletionRecord]:
    return list(db.session.scalars(sa.select(DeletionRecord).where(DeletionRecord.tenant_id == tenant_id)
                                   .order_by(DeletionRecord.started_at.desc()).limit(limit)))


def expired_deletion_records(tenant_id, as_of: date) -> list[DeletionRecord]:
    """Finished records past their 5 years (kept through ``keep_until``, purged after it)."""
    return list(db.session.scalars(sa.select(DeletionRecord).where(
        DeletionRecord.tenant_id == tenant_id, DeletionRecord.status == "done",
        DeletionRecord.keep_until < as_of)))
