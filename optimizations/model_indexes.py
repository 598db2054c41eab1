"""The Django model a table belongs to, and the models.Index that says an index on it.

A migration (dbarchitect.migration_writer) and an apply from the admin (applying.py) both
name an index through `index_resolve`, so the two never build one index under two names.
"""

import dataclasses
import hashlib

from django.apps import apps
from django.db import models

from pgaccess.ddl import IndexSpec, index_spec_parse

# Django's system check models.E034 caps index names at 30 characters.
DJANGO_INDEX_NAME_MAX = 30


def model_for_table(table: str, schema: str | None = None):
    """The managed Django model whose table this is, or None."""
    if schema not in (None, "public"):
        return None
    for model in apps.get_models():
        opts = model._meta
        if opts.db_table == table and opts.managed and not opts.proxy:
            return model
    return None


def django_index_for(spec: IndexSpec, model) -> models.Index | None:
    """The models.Index equal to the spec, or None when the model cannot express it."""
    if not spec.plain:
        return None
    by_column = {f.column: f.name for f in model._meta.concrete_fields}
    if not all(column in by_column for column in spec.columns):
        return None
    name = spec.name
    if len(name) > DJANGO_INDEX_NAME_MAX or name[0] in "_0123456789":
        name = "dba_" + hashlib.sha1(spec.name.encode()).hexdigest()[:12] + "_idx"
    fields = [
        ("-" if desc else "") + by_column[column]
        for column, desc in zip(spec.columns, spec.descending, strict=True)
    ]
    return models.Index(fields=fields, name=name)


def index_resolve(ddl: str) -> tuple[IndexSpec, type | None, models.Index | None]:
    """The spec, its Django model and models.Index (when one says it), under one final name
    (DdlError when `ddl` is not one CREATE INDEX).

    The migration and an apply from the admin use this same name, so the two never build
    the same index twice under different names.
    """
    spec = index_spec_parse(ddl)
    model = model_for_table(spec.table, spec.schema)
    index = django_index_for(spec, model) if model is not None else None
    if index is not None and index.name != spec.name:
        spec = dataclasses.replace(spec, name=index.name)
    return spec, model, index
