"""Which of the app's own tables a user may read through ask-the-database.

On the app's own database the tables of Django models are the app's internals (accounts
and their groups, the admin log, celery-beat's schedule, audits, recommendations, the
question log): the admin shows each only to a user with the view permission of its model,
and ask-the-database follows the same rule, whatever the SQL's origin (generated, trained,
typed). The data apps (NLSQL_DATA_APPS, the demo's schema) and tables no model owns stay
readable to every staff user; other targets are not the app's database and are unchanged.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_permission_codename
from psycopg.conninfo import conninfo_to_dict

from pgaccess.targets import DEFAULT_TARGET, configured_targets, database_conninfo

from .guard import SqlRefused
from .runner import RelationRule

# What identifies a database: two targets with the same ones are the same database.
DATABASE_KEYS = ("host", "port", "dbname")


@dataclass(frozen=True)
class TableOwner:
    table: str
    model_label: str  # "admin.LogEntry"
    permission: str  # "admin.view_logentry"


def table_owners() -> dict[str, TableOwner]:
    """db_table -> the model whose view permission reading it needs, for every model outside
    the data apps; a many-to-many table belongs to the model that declares the field."""
    owners = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy:
            continue  # its table is its concrete model's
        owner = model._meta.auto_created or model
        meta = owner._meta
        if meta.app_label in settings.NLSQL_DATA_APPS:
            continue
        owners[model._meta.db_table] = TableOwner(
            table=model._meta.db_table,
            model_label=meta.label,
            permission=f"{meta.app_label}.{get_permission_codename('view', meta)}",
        )
    return owners


def _database(conninfo: str) -> tuple:
    params = conninfo_to_dict(conninfo)
    return tuple(str(params.get(key) or "") for key in DATABASE_KEYS)


def is_app_database(target: str) -> bool:
    """The app's own database: the default target, or another name for it."""
    if target == DEFAULT_TARGET:
        return True
    conninfo = configured_targets().get(target)
    return conninfo is not None and _database(conninfo) == _database(database_conninfo())


def table_refusal(*, table: str, user, owners: dict[str, TableOwner]) -> str | None:
    """Why `user` may not read `table` (schema-qualified or bare) of the app's database."""
    owner = owners.get(table.rpartition(".")[2].lower())
    if owner is None or user.has_perm(owner.permission):
        return None
    return (
        f"Table {table} is the app's own ({owner.model_label}): reading it needs the "
        f"permission {owner.permission}, which user {user.get_username()!r} does not have."
    )


def relation_rule(*, target: str, user) -> RelationRule | None:
    """The rule for `user` on `target` as the runner applies it to what a plan reads (a
    table behind a view too); None when nothing is restricted. `user` None is the operator
    at the command line, who may read everything."""
    if user is None or not is_app_database(target):
        return None
    owners = table_owners()
    return lambda schema, table: table_refusal(table=table, user=user, owners=owners)


def tables_check_permitted(*, tables: Iterable[str], target: str, user) -> None:
    """Raise SqlRefused naming the first table of the app's own database that `user` may not
    read."""
    rule = relation_rule(target=target, user=user)
    if rule is None:
        return
    for table in tables:
        refusal = rule(None, table)
        if refusal:
            raise SqlRefused(refusal)
