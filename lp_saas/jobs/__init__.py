"""Background work: an outbox row per job (models), dispatch after commit (queue), the runner."""
