"""Alembic migrations (run with `k4u db upgrade`)."""
