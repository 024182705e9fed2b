"""Alembic environment: the schema is the application's SQLModel metadata."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlmodel import SQLModel

from {{ cookiecutter.package_name }} import models  # noqa: F401 - registers every table
from {{ cookiecutter.package_name }}.lib.config import get_settings

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata

# Serialises `alembic upgrade` across processes (api replicas, pre-deploy, entrypoint):
# the second waits, then finds nothing left to do.
MIGRATION_LOCK_KEY = 0x616C656D62696331


def database_url() -> str:
    # Tests pass a URL through the Alembic config; processes use DATABASE_URL.
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # Migrations run synchronously on psycopg 3, the same driver the app uses async.
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
