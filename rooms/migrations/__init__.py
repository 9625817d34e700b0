"""Alembic migrations of the rooms schema; run with ``passerelle db upgrade``."""
