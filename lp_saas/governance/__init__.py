"""A school's governance records (工作小組、會議、研習): the working group's members, meetings with their
minutes and the rule-set versions they adopted, and trainings for students, teachers and parents.

Decisions: the pages live on the school's host under ``/governance`` and need ``governance.edit``
(the catalogue has no separate view permission); records are tenant-owned tables (``tenant_id`` first
in every key, row-level security on PostgreSQL). A meeting's adoption of rule-set versions is the
link table ``meeting_rule_sets`` on this side, so ``rule_sets`` stays unchanged; a version is adopted
by at most one meeting. Minutes are a PDF of at most 10 MB uploaded through the web process (an
administrator's occasional upload), type sniffed from content, stored in the school's bucket under a
generated key. Only counts and dates of these records reach a regional office (``platform.oversight``).
"""
