"""Which installed Django app's migrations own an index: the model, and the change to write.

Dropping such an index by hand makes that app's migrations drift (the next migrate or
makemigrations disagrees with the database), so a finding on it names the app, the model and
the migration operation instead of a raw DROP. Names are matched the way Django's schema
editor makes them: Meta.indexes and constraints by their names, db_index / unique fields and
unique_together by the generated `<table>_<column>_<hash>` (and `_like`) names.
"""

from dataclasses import dataclass

from django.apps import apps
from django.db import connection


@dataclass(frozen=True)
class IndexOwner:
    app_label: str
    model: str
    source: str  # "Meta.indexes", "db_index", "unique_together", "Meta.constraints"
    operation: str  # what to write: the model change and the migration operation

    @property
    def sentence(self) -> str:
        return (
            f"created by a migration of app {self.app_label} (model {self.model}, "
            f"{self.source}): {self.operation}, then makemigrations; a raw DROP would make "
            f"{self.app_label}'s migrations drift"
        )


def index_owner(*, table: str, index: str, schema: str = "public") -> IndexOwner | None:
    """The app model whose migrations created `index` on `table`, or None."""
    if schema != "public":
        return None
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if opts.db_table != table or not opts.managed or opts.proxy:
            continue
        for owner in _owned_names(model):
            if owner[0] == index:
                return IndexOwner(
                    app_label=opts.app_label,
                    model=model.__name__,
                    source=owner[1],
                    operation=owner[2],
                )
    return None


def _owned_names(model):
    """(index name, where it is declared, what to write) for every index the model makes."""
    opts = model._meta
    label = f"{opts.app_label}.{model.__name__}"
    for index in opts.indexes:
        yield (
            index.name,
            "Meta.indexes",
            f"remove models.Index(name={index.name!r}) from {label}.Meta.indexes "
            f"(migrations.RemoveIndex(model_name={opts.model_name!r}, name={index.name!r}))",
        )
    for constraint in opts.constraints:
        yield (
            constraint.name,
            "Meta.constraints",
            f"remove {constraint.name!r} from {label}.Meta.constraints "
            f"(migrations.RemoveConstraint(model_name={opts.model_name!r}, "
            f"name={constraint.name!r}))",
        )
    editor = connection.schema_editor()
    for fields in opts.unique_together:
        columns = [opts.get_field(name).column for name in fields]
        yield (
            editor._create_index_name(opts.db_table, columns, suffix="_uniq"),
            "unique_together",
            f"remove {tuple(fields)} from {label}.Meta.unique_together "
            "(migrations.AlterUniqueTogether)",
        )
    for field in opts.local_fields:
        if not (field.db_index or field.unique) or field.primary_key:
            continue
        change = "db_index=False" if field.db_index and not field.unique else "unique=False"
        operation = (
            f"set {change} on {label}.{field.name} "
            f"(migrations.AlterField(model_name={opts.model_name!r}, name={field.name!r}, ...))"
        )
        for suffix in ("", "_like", "_uniq"):
            name = editor._create_index_name(opts.db_table, [field.column], suffix=suffix)
            yield (name, "db_index" if field.db_index else "unique", operation)
