"""Thin Celery tasks: explicit names, ids only, one service call each."""
