"""Turn index recommendations into a Django migration file (and the model's Meta line).

A plain b-tree index on the columns of a managed Django model becomes
`AddIndexConcurrently` in that model's app, and the model's `Meta.indexes` gets the same
`models.Index`, so `makemigrations --check` stays clean. Anything Django's `models.Index`
cannot say without losing meaning (an unmanaged table, a table no model maps, expressions,
partial, unique, non-btree, NULLS ordering) becomes `RunSQL` with `CREATE INDEX CONCURRENTLY
IF NOT EXISTS` and its reverse. Both run outside a transaction (`atomic = False`).
"""

import ast
import dataclasses
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.writer import MigrationWriter
from pglast import parse_sql
from pglast.ast import IndexStmt
from pglast.enums.parsenodes import SortByDir, SortByNulls
from pglast.stream import RawStream
from psycopg import sql

# Django's system check models.E034 caps index names at 30 characters.
DJANGO_INDEX_NAME_MAX = 30
POSTGRES_NAME_MAX = 63


class MigrationWriteError(ValueError):
    """The recommendation cannot be written as a migration; str() says why."""


@dataclass(frozen=True)
class IndexSpec:
    """One CREATE INDEX statement, parsed: what the migration needs to know."""

    statement: IndexStmt = field(compare=False)
    schema: str | None
    table: str
    name: str
    columns: tuple[str, ...]  # plain columns, in order; empty when any element is an expression
    descending: tuple[bool, ...]
    plain: bool  # btree, no expression/WHERE/UNIQUE/NULLS/opclass/collation: a models.Index

    def create_sql(self, *, if_not_exists: bool = True, concurrent: bool = True) -> str:
        self.statement.concurrent = concurrent
        self.statement.if_not_exists = if_not_exists
        self.statement.idxname = self.name
        return RawStream()(self.statement)

    def drop_sql(self) -> str:
        parts = (self.schema, self.name) if self.schema else (self.name,)
        return f"DROP INDEX CONCURRENTLY IF EXISTS {sql.Identifier(*parts).as_string(None)}"


def _default_name(table: str, columns: list[str], ddl: str, limit: int) -> str:
    digest = hashlib.sha1(ddl.encode()).hexdigest()[:8]
    stem = "_".join([table, *columns])[: limit - len(digest) - 6].rstrip("_")
    return f"{stem}_{digest}_idx"


def index_spec_parse(ddl: str) -> IndexSpec:
    """Parse one CREATE INDEX statement with the PostgreSQL parser."""
    try:
        statements = parse_sql(ddl)
    except Exception as exc:  # pglast.parser.ParseError and friends
        raise MigrationWriteError(f"Cannot parse the DDL {ddl!r}: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, IndexStmt):
        raise MigrationWriteError(f"Expected one CREATE INDEX statement, got {ddl!r}")
    stmt = statements[0].stmt
    columns, descending, plain = [], [], True
    for element in stmt.indexParams:
        if element.name is None:
            plain = False
            columns.append("expr")
            descending.append(False)
            continue
        columns.append(element.name)
        descending.append(element.ordering == SortByDir.SORTBY_DESC)
        if element.nulls_ordering != SortByNulls.SORTBY_NULLS_DEFAULT:
            plain = False
        if element.opclass or element.collation:
            plain = False
    if stmt.unique or stmt.whereClause is not None or stmt.indexIncludingParams:
        plain = False
    if (stmt.accessMethod or "btree") != "btree":
        plain = False
    table = stmt.relation.relname
    name = stmt.idxname or _default_name(table, columns, ddl, POSTGRES_NAME_MAX)
    return IndexSpec(
        statement=stmt,
        schema=stmt.relation.schemaname,
        table=table,
        name=name,
        columns=tuple(columns) if plain else (),
        descending=tuple(descending),
        plain=plain,
    )


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
    """The spec, its Django model and models.Index (when one says it), under one final name.

    The migration and an apply from the admin use this same name, so the two never build
    the same index twice under different names.
    """
    spec = index_spec_parse(ddl)
    model = model_for_table(spec.table, spec.schema)
    index = django_index_for(spec, model) if model is not None else None
    if index is not None and index.name != spec.name:
        spec = dataclasses.replace(spec, name=index.name)
    return spec, model, index


@dataclass
class AppMigration:
    """The file(s) one app gains: a migration, and maybe an edited models.py."""

    app_label: str
    operations: list = field(default_factory=list)
    model_indexes: list[tuple[type, models.Index]] = field(default_factory=list)
    index_names: list[str] = field(default_factory=list)


def plan_migrations(ddls: list[str], *, fallback_app: str) -> dict[str, AppMigration]:
    """Group the operations by the app whose migration carries them."""
    if fallback_app not in {config.label for config in apps.get_app_configs()}:
        raise MigrationWriteError(
            f"DBARCHITECT_GIT_MIGRATIONS_APP={fallback_app!r} is not an installed app"
        )
    plans: dict[str, AppMigration] = {}
    for ddl in ddls:
        spec, model, index = index_resolve(ddl)
        if index is not None:
            plan = plans.setdefault(model._meta.app_label, AppMigration(model._meta.app_label))
            plan.operations.append(
                AddIndexConcurrently(model_name=model._meta.model_name, index=index)
            )
            plan.model_indexes.append((model, index))
            plan.index_names.append(index.name)
        else:
            plan = plans.setdefault(fallback_app, AppMigration(fallback_app))
            plan.operations.append(
                migrations.RunSQL(sql=spec.create_sql(), reverse_sql=spec.drop_sql())
            )
            plan.index_names.append(spec.name)
    return plans


class _NonAtomicWriter(MigrationWriter):
    def as_string(self) -> str:
        text = super().as_string()
        head = "class Migration(migrations.Migration):\n"
        # CREATE INDEX CONCURRENTLY cannot run inside a transaction block.
        return text.replace(head, head + "\n    atomic = False\n", 1)


def _migration_files(directory: Path) -> list[str]:
    return sorted(
        path.stem
        for path in directory.glob("*.py")
        if path.stem[:4].isdigit() and not path.stem.startswith("__")
    )


def render_migration(plan: AppMigration, *, migrations_dir: Path, name_suffix: str) -> tuple:
    """(file name, source) of the next migration in a repository's migrations directory."""
    existing = _migration_files(migrations_dir)
    number = int(existing[-1][:4]) + 1 if existing else 1
    name = f"{number:04d}_{name_suffix}"[:80]
    migration = migrations.Migration(name, plan.app_label)
    migration.dependencies = [(plan.app_label, existing[-1])] if existing else []
    migration.operations = plan.operations
    return f"{name}.py", _NonAtomicWriter(migration).as_string()


def _index_source(index: models.Index) -> str:
    fields = ", ".join(repr(name) for name in index.fields)
    return f"models.Index(fields=[{fields}], name={index.name!r})"


def patch_model_source(source: str, *, model_name: str, indexes: list[models.Index]) -> str:
    """Add the indexes to the model's Meta.indexes in a models.py source text."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    model = next(
        (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == model_name), None
    )
    if model is None:
        raise MigrationWriteError(f"class {model_name} not found in its models.py")
    new = [_index_source(index) for index in indexes]
    meta = next((n for n in model.body if isinstance(n, ast.ClassDef) and n.name == "Meta"), None)
    if meta is None:
        indent = " " * model.body[0].col_offset
        block = f"\n{indent}class Meta:\n{indent}    indexes = [{', '.join(new)}]\n"
        return _insert_after(lines, model.end_lineno, block)
    assign = next(
        (
            n
            for n in meta.body
            if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "indexes" for t in n.targets)
        ),
        None,
    )
    indent = " " * meta.body[0].col_offset
    if assign is None:
        return _insert_after(lines, meta.end_lineno, f"{indent}indexes = [{', '.join(new)}]\n")
    if not isinstance(assign.value, ast.List):
        raise MigrationWriteError(f"{model_name}.Meta.indexes is not a list literal")
    items = [ast.get_source_segment(source, element) for element in assign.value.elts] + new
    body = "".join(f"{indent}    {item},\n" for item in items)
    rendered = f"[\n{body}{indent}]"
    node = assign.value
    start = _offset(lines, node.lineno, node.col_offset)
    end = _offset(lines, node.end_lineno, node.end_col_offset)
    text = "".join(lines)
    return text[:start] + rendered + text[end:]


def _offset(lines: list[str], lineno: int, col: int) -> int:
    # ast columns are UTF-8 byte offsets.
    prefix = lines[lineno - 1].encode()[:col].decode()
    return sum(len(line) for line in lines[: lineno - 1]) + len(prefix)


def _insert_after(lines: list[str], lineno: int, block: str) -> str:
    return "".join(lines[:lineno]) + block + "".join(lines[lineno:])


@dataclass(frozen=True)
class WrittenFile:
    path: Path  # relative to the repository root
    content: str


def migration_files_write(
    *, ddls: list[str], repo_root: Path, name_suffix: str, fallback_app: str | None = None
) -> tuple[list[WrittenFile], list[str]]:
    """Write the migrations (and model edits) into a working tree; (files, index names)."""
    fallback_app = fallback_app or settings.DBARCHITECT_GIT_MIGRATIONS_APP
    files: dict[Path, str] = {}
    names: list[str] = []
    for app_label, plan in plan_migrations(ddls, fallback_app=fallback_app).items():
        app_dir = Path(apps.get_app_config(app_label).path).relative_to(settings.BASE_DIR)
        migrations_dir = repo_root / app_dir / "migrations"
        if not migrations_dir.is_dir():
            raise MigrationWriteError(f"{app_dir}/migrations does not exist in {repo_root}")
        file_name, content = render_migration(
            plan, migrations_dir=migrations_dir, name_suffix=name_suffix
        )
        files[app_dir / "migrations" / file_name] = content
        for model, index in plan.model_indexes:
            relative = Path(sys.modules[model.__module__].__file__).relative_to(settings.BASE_DIR)
            source = files.get(relative) or (repo_root / relative).read_text()
            files[relative] = patch_model_source(source, model_name=model.__name__, indexes=[index])
        names.extend(plan.index_names)
    for relative, content in files.items():
        (repo_root / relative).write_text(content)
    return [WrittenFile(path, content) for path, content in files.items()], names
