"""The SaaS around the schools (issue 5): signup on the apex, e-mail verification, approval and
provisioning, the operator console, plans and quotas, regional offices and their dashboards, the
platform's own users, and each school's branding.

Modules: ``models`` (platform tables, no row-level security), ``plans`` (the plan catalogue),
``services`` (signups, approval, suspension, quotas, offices, platform users), ``auth`` (platform
users' passwords, sessions, tokens), ``mail`` (the mail outbox), ``oversight`` (an office's figures),
``branding`` (logo and colours), ``views`` (apex pages), ``school_views`` (pages on a school's host:
the first administrator's set-password link, branding), ``api`` (apex API routes).

Decisions (what the issue left open):

- **A signup is only a request.** ``POST /api/v1/signups`` (and the page) stores a ``signups`` row and
  nothing else; the tenant is created when an operator approves. While open (verified, or unverified
  within the 48-hour life of its link) the signup holds its subdomain: availability checks tenants and
  open signups, and a partial unique index allows one open signup per slug. A stale unverified signup
  is marked ``expired`` when someone else asks for its subdomain. Bad input (taken, reserved or
  malformed subdomain, bad school code, bad e-mail, unknown plan or school type, text with angle
  brackets) is a 422 naming each field in the caller's language, and stores nothing. One client may
  store ``LP_SIGNUP_LIMIT`` signups (default 20 per hour; refused ones do not count), so the signup
  form cannot be used to bomb mailboxes.
- **Verification** is a link signed with ``SECRET_KEY`` (itsdangerous, its own salt), valid 48 hours,
  mailed to the contact. Approval of an unverified signup is refused (409 ``signup_unverified``).
- **Approval** (``flask tenants approve SLUG`` or the console) creates the tenant (``create_tenant``,
  status ``provisioning``), its subscription, and submits an ``activate_school`` job, which runs the
  ``provision_tenant`` work (``tenants.services.provision_job``: bucket, roles, rule sets, active),
  creates the first school administrator ``admin`` (no password) and mails the contact a set-password
  link. The link is signed, bound to the school, the account and its current password hash (so it
  works once) and lasts 14 days; the console can send a new one. The CLI runs the job in-process and
  returns when the school is ready; the console dispatches it after the commit (RQ with Redis,
  in-process otherwise). Signups are provisioned from the ``moe`` template.
- **Mail** goes through an outbox table written in the transaction that causes it and delivered after
  the commit, by SMTP to ``LP_SMTP_HOST``. Without it the mail is logged and kept in full for the
  console's mail page (the embedded demo); a sent mail's body is dropped (it holds one-time links).
- **Plans** are a small catalogue in code (``plans.PLANS``); a school's ``subscriptions`` row copies the
  quotas when the plan is chosen. A school with no subscription (made by ``tenants create``, the demo)
  has no quota. Students counted: active accounts holding the ``student`` role. Storage counted:
  portfolio files (declared size until verified, rejected ones excluded) plus governance minutes, one
  aggregate query. ``check_student_quota(tenant, adding=1)`` and ``check_storage_quota(tenant,
  extra_bytes)`` raise ``QuotaExceeded`` (409, ``student_quota_exceeded`` / ``storage_quota_exceeded``).
- **Suspension** only flips the tenant's status (the resolver shows the notice, nothing else changes)
  and is written to the platform's event log and the school's own audit log; resume flips it back.
- **Platform users** (operators; officers of one office) live in ``platform_users`` with their own
  Argon2 hashes, lockout and server-side sessions (``platform_sessions``), and sign in on the apex only
  (``/platform/login``; API tokens from ``POST /api/v1/platform/token``). See ``auth`` for why a
  school's session or token is nothing on the apex and the other way round.
- **Offices**: codes are 2–20 letters, digits or hyphens, stored upper-case and matched without regard
  to case. A school may be overseen by several offices. Officers see their own office only (another
  code is a 404); operators may open every office's dashboard and API.
- **Figures** for offices (see ``oversight``) are computed per school inside that school's tenant scope,
  because row-level security hides other schools' rows from a query without one; only counts, rates,
  dates and school names leave.
"""
