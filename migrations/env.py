"""Alembic environment: migrate the configured database; the schema comes from gridrisk.db.tables.

The versioned migrations change the schema. The functions, triggers and views are source code
(src/gridrisk/db/functions, current definitions only): whenever an upgrade moves the database to the
head revision, they are applied from source at the end, in the same transaction. Applied only at
head, they always meet the schema they were written for; applied only after a migration ran, a
`db upgrade` with nothing to do takes no locks. (Offline `--sql` scripts hold the migrations only.)
"""

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from gridrisk.db.functions import apply_functions
from gridrisk.db.migrate import include_object
from gridrisk.db.tables import metadata
from gridrisk.settings import Settings

config = context.config


def _url() -> str:
    # The runner passes the URL explicitly; a bare `alembic` call falls back to the environment.
    return config.attributes.get("sqlalchemy_url") or Settings().sqlalchemy_url


_include_object = include_object


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        include_object=_include_object,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(_url(), poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:
    upgrades: list[bool] = []  # per migration step run: was it an upgrade?
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include_object,
        render_item=alembic_helpers.render_item,
        process_revision_directives=alembic_helpers.writer,
        transaction_per_migration=False,
        on_version_apply=lambda step, **_: upgrades.append(step.is_upgrade),
    )
    with context.begin_transaction():
        context.run_migrations()
        heads = set(context.get_context().get_current_heads())
        if upgrades and all(upgrades) and heads == set(context.script.get_heads()):
            apply_functions(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
