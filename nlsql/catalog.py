"""What a target database looks like, read from its catalog: one DDL text per table."""

from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from psycopg import sql

from pgaccess.targets import DEFAULT_TARGET

from .guard import SECRET_RELATIONS
from .runner import read_only_connection

TABLES_SQL = """
SELECT c.oid AS table_oid,
       n.nspname AS schema_name,
       c.relname AS table_name,
       c.relkind AS kind,
       c.reltuples::bigint AS approx_rows,  -- -1: never analyzed
       obj_description(c.oid, 'pg_class') AS table_comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
ORDER BY n.nspname, c.relname
"""

COLUMNS_SQL = """
SELECT a.attrelid AS table_oid,
       a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attnotnull AS not_null,
       col_description(a.attrelid, a.attnum) AS column_comment
FROM pg_attribute a
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

CONSTRAINTS_SQL = """
SELECT con.conrelid AS table_oid,
       con.contype AS kind,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
WHERE con.conrelid = ANY(%(oids)s) AND con.contype IN ('p', 'f', 'u')
ORDER BY con.conrelid, con.contype = 'p' DESC, con.contype, con.conname
"""

KIND_NAMES = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "TABLE"}


@dataclass
class Column:
    name: str
    data_type: str
    not_null: bool
    comment: str | None


@dataclass
class TableInfo:
    schema: str
    name: str
    kind: str
    approx_rows: int
    comment: str | None
    columns: list[Column] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


def model_help_texts() -> dict[tuple[str, str], str]:
    """(table, column) -> help_text of the Django models: notes the database itself lacks."""
    notes = {}
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if model_field.help_text:
                key = (model._meta.db_table, model_field.column)
                notes[key] = str(model_field.help_text)
    return notes


def catalog_read(*, target: str) -> list[TableInfo]:
    """Tables and views of the allowed schemas, minus denied tables: what questions may use.

    On the app's own database the Django models' help texts fill in missing column comments.
    """
    denied = set(settings.NLSQL_DENIED_TABLES) | SECRET_RELATIONS
    with read_only_connection(target) as conn:
        tables_rows = conn.execute(TABLES_SQL, {"schemas": settings.NLSQL_ALLOWED_SCHEMAS})
        tables = {
            row[0]: TableInfo(
                schema=row[1], name=row[2], kind=row[3], approx_rows=row[4], comment=row[5]
            )
            for row in tables_rows.fetchall()
            if row[2] not in denied and f"{row[1]}.{row[2]}" not in denied
        }
        oids = list(tables)
        notes = model_help_texts() if target == DEFAULT_TARGET else {}
        for oid, name, data_type, not_null, comment in conn.execute(
            COLUMNS_SQL, {"oids": oids}
        ).fetchall():
            comment = comment or notes.get((tables[oid].name, name))
            tables[oid].columns.append(Column(name, data_type, not_null, comment))
        for oid, _kind, definition in conn.execute(CONSTRAINTS_SQL, {"oids": oids}).fetchall():
            tables[oid].constraints.append(definition)
        conn.rollback()
    return list(tables.values())


def table_ddl(table: TableInfo) -> str:
    """A compact CREATE TABLE text for the prompt, with comments and the row estimate."""
    name = sql.Identifier(table.schema, table.name).as_string()
    header = f"CREATE {KIND_NAMES.get(table.kind, 'TABLE')} {name} ("
    items: list[tuple[str, str | None]] = []
    for column in table.columns:
        code = f"{sql.Identifier(column.name).as_string()} {column.data_type}"
        items.append((code + (" NOT NULL" if column.not_null else ""), column.comment))
    items.extend((definition, None) for definition in table.constraints)
    lines = []
    for position, (code, comment) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        lines.append(f"  {code}{comma}" + (f"  -- {_one_line(comment)}" if comment else ""))
    body = "\n".join(lines)
    rows = table.approx_rows
    notes = [f"about {rows} rows" if rows >= 0 else "row count unknown (never analyzed)"]
    if table.comment:
        notes.insert(0, _one_line(table.comment))
    return f"-- {'; '.join(notes)}\n{header}\n{body}\n);"


def _one_line(text: str) -> str:
    return " ".join(text.split())
