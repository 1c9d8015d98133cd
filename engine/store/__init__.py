"""The store: SQLModel tables, Alembic migrations, sessions. Only this package uses SQL."""
