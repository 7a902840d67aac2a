"""Notices on a user's dashboard and e-mail over SMTP (reminders, hand-overs, lifecycle events)."""
