"""Turn index recommendations into a Django migration file (and the model's Meta line).

A plain b-tree index on the columns of a managed Django model becomes
`AddIndexConcurrently` in that model's app, and the model's `Meta.indexes` gets the same
`models.Index`, so `makemigrations --check` stays clean. Anything Django's `models.Index`
cannot say without losing meaning (an unmanaged table, a table no model maps, expressions,
partial, unique, non-btree, NULLS ordering) becomes `RunSQL` with `CREATE INDEX CONCURRENTLY
IF NOT EXISTS` and its reverse. Both run outside a transaction (`atomic = False`). A
statistics object is `RunSQL` too: its CREATE STATISTICS IF NOT EXISTS and the ANALYZE of
its columns that fills it, reversed by DROP STATISTICS.
"""

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.writer import MigrationWriter

from optimizations.model_indexes import index_resolve
from pgaccess.ddl import DdlError
from pgaccess.statistics_ddl import StatisticsDdlError, StatisticsSpec, statistics_spec_parse


class MigrationWriteError(ValueError):
    """The recommendation cannot be written as a migration; str() says why."""


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
        statistics = _statistics_spec(ddl)
        if statistics is not None:
            plan = plans.setdefault(fallback_app, AppMigration(fallback_app))
            plan.operations.append(
                migrations.RunSQL(
                    sql=[statistics.create_sql(if_not_exists=True), statistics.analyze_sql()],
                    reverse_sql=[statistics.drop_sql()],
                )
            )
            plan.index_names.append(statistics.name)
            continue
        try:
            spec, model, index = index_resolve(ddl)
        except DdlError as exc:
            raise MigrationWriteError(str(exc)) from None
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


def _statistics_spec(ddl: str) -> StatisticsSpec | None:
    """The statistics object `ddl` creates, or None when it is no CREATE STATISTICS."""
    try:
        return statistics_spec_parse(ddl)
    except StatisticsDdlError:
        return None


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
