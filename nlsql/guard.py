"""The SQL guard: exactly one read-only SELECT, checked on the real Postgres parse tree.

Everything not known to be safe is refused: statements other than SELECT anywhere in
the tree (data-modifying CTEs too), SELECT INTO, row locks, functions outside an
allow-list of pure built-ins, user-defined operators and types, denied tables and
schemas, and the system catalogs that hold secrets. What passes is re-printed from the
tree (pglast), so the runner executes exactly what was checked.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

# Always readable besides the allowed schemas: the catalogs describe the schema itself.
# (Not every pg_* schema: pg_toast holds the rows of tables the guard denies.)
from pgaccess.catalog import SYSTEM_SCHEMAS

from .functions import SAFE_FUNCTIONS, refusal_for_function

# Catalogs and views that hold passwords, connection strings, other sessions' queries,
# file contents or sampled column values: never readable, whatever the settings say.
SECRET_RELATIONS = frozenset(
    {
        "pg_authid",
        "pg_shadow",
        "pg_user_mapping",
        "pg_user_mappings",
        "pg_statistic",
        "pg_statistic_ext_data",
        "pg_stats",
        "pg_stats_ext",
        "pg_stats_ext_exprs",
        "pg_largeobject",
        "pg_largeobject_metadata",
        "pg_subscription",
        "pg_foreign_server",
        "pg_foreign_data_wrapper",
        "pg_db_role_setting",
        "pg_file_settings",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_stat_activity",
        "pg_stat_statements",
        "pg_stat_statements_info",
        "pg_prepared_xacts",
        "pg_replication_slots",
        "pg_config",
        "pg_backend_memory_contexts",
        "pg_shmem_allocations",
        "pg_settings",
        # information_schema views over user mappings and foreign servers (their options)
        "user_mapping_options",
        "user_mappings",
        "foreign_server_options",
        "foreign_servers",
    }
)

# The built-in TABLESAMPLE methods; extension methods run arbitrary code.
SAFE_TABLESAMPLE_METHODS = frozenset({"system", "bernoulli"})

STATEMENT_NAMES = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CopyStmt": "COPY",
    "VariableSetStmt": "SET",
    "VariableShowStmt": "SHOW",
    "DoStmt": "DO",
    "ListenStmt": "LISTEN",
    "NotifyStmt": "NOTIFY",
    "UnlistenStmt": "UNLISTEN",
    "TransactionStmt": "a transaction command",
    "ExplainStmt": "EXPLAIN",
    "CallStmt": "CALL",
    "LockStmt": "LOCK",
    "TruncateStmt": "TRUNCATE",
    "CreateTableAsStmt": "CREATE TABLE AS",
    "PrepareStmt": "PREPARE",
    "ExecuteStmt": "EXECUTE",
    "DeclareCursorStmt": "DECLARE CURSOR",
    "VacuumStmt": "VACUUM/ANALYZE",
    "GrantStmt": "GRANT/REVOKE",
    "GrantRoleStmt": "GRANT/REVOKE",
    "DropStmt": "DROP",
}


class SqlRefused(Exception):
    """The SQL is not a single safe SELECT; str() is the reason, meant for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedSql:
    sql: str  # re-printed from the checked parse tree: what the runner executes
    tables: tuple[str, ...]


@dataclass(frozen=True)
class GuardPolicy:
    denied_tables: frozenset[str]
    allowed_schemas: frozenset[str]
    max_length: int

    @classmethod
    def from_settings(cls) -> "GuardPolicy":
        return cls(
            denied_tables=frozenset(settings.NLSQL_DENIED_TABLES),
            allowed_schemas=frozenset(settings.NLSQL_ALLOWED_SCHEMAS),
            max_length=settings.NLSQL_MAX_SQL_LENGTH,
        )


def sql_check(sql: object, *, policy: GuardPolicy | None = None) -> CheckedSql:
    """Return the checked SELECT, or raise SqlRefused saying what is not allowed."""
    policy = policy or GuardPolicy.from_settings()
    if not isinstance(sql, str):
        raise SqlRefused("The SQL must be text.")
    if not sql.strip():
        raise SqlRefused("The SQL is empty.")
    if "\x00" in sql:
        raise SqlRefused("The SQL contains a NUL character.")
    if len(sql) > policy.max_length:
        raise SqlRefused(
            f"The SQL is {len(sql)} characters long; the limit is {policy.max_length}."
        )
    try:
        statements = parse_sql(sql)
    except ParseError as exc:
        raise SqlRefused(f"Not valid PostgreSQL: {exc}") from None
    if len(statements) != 1:
        raise SqlRefused(f"Exactly one statement is allowed; found {len(statements)}.")
    statement = statements[0].stmt
    if not isinstance(statement, ast.SelectStmt):
        raise SqlRefused(f"Only SELECT is allowed; this is {_statement_name(statement)}.")
    checker = _Checker(policy)
    checker(statement)
    return CheckedSql(sql=RawStream()(statement), tables=tuple(sorted(checker.tables)))


def _statement_name(node: ast.Node) -> str:
    name = type(node).__name__
    if name in STATEMENT_NAMES:
        return STATEMENT_NAMES[name]
    return f"DDL or a utility command ({name.removesuffix('Stmt')})"


def _names(items: Iterable) -> list[str]:
    """The text of a pglast name list (String nodes); '*' for A_Star."""
    return [getattr(item, "sval", "*") for item in items or ()]


def relation_refusal(schema: str | None, table: str, policy: GuardPolicy) -> str | None:
    """Why a relation may not be read (secret, outside the allowed schemas, denied), or None."""
    qualified = f"{schema}.{table}" if schema else table
    if table.lower() in SECRET_RELATIONS:
        return f"{qualified} holds secrets or other sessions' data; never readable."
    if schema is not None and schema not in policy.allowed_schemas | SYSTEM_SCHEMAS:
        allowed = ", ".join(sorted(policy.allowed_schemas))
        return f"Schema {schema} is not allowed (allowed: {allowed})."
    for denied in policy.denied_tables:
        denied_schema, _, denied_table = denied.rpartition(".")
        if table == denied_table and (not denied_schema or schema in (None, denied_schema)):
            return f"Table {qualified} is denied by NLSQL_DENIED_TABLES."
    return None


class _Checker(Visitor):
    """Walks every node; the first unsafe one raises SqlRefused."""

    def __init__(self, policy: GuardPolicy):
        super().__init__()
        self.policy = policy
        self.tables: set[str] = set()

    def visit(self, ancestors, node):
        if type(node).__name__.endswith("Stmt") and not isinstance(node, ast.SelectStmt):
            raise SqlRefused(f"Only SELECT is allowed; the query contains {_statement_name(node)}.")
        return None

    def visit_SelectStmt(self, ancestors, node: ast.SelectStmt):
        if node.intoClause is not None:
            raise SqlRefused("SELECT ... INTO creates a table; only plain SELECT is allowed.")
        if node.lockingClause:
            raise SqlRefused("FOR UPDATE / FOR SHARE takes row locks; it is not allowed.")

    def visit_FuncCall(self, ancestors, node: ast.FuncCall):
        names = _names(node.funcname)
        name = names[-1].lower()
        schema = names[0] if len(names) > 1 else None
        qualified = ".".join(names)
        if len(names) > 2 or (schema is not None and schema != "pg_catalog"):
            raise SqlRefused(
                f"Function {qualified} is not a built-in; only allow-listed built-in "
                "functions (pg_catalog) may be called."
            )
        if name not in SAFE_FUNCTIONS:
            raise SqlRefused(refusal_for_function(qualified, name))

    def visit_A_Expr(self, ancestors, node: ast.A_Expr):
        names = _names(node.name)
        if len(names) > 1 and names[0] != "pg_catalog":
            raise SqlRefused(f"Operator {'.'.join(names)} is not a built-in operator.")

    def visit_TypeName(self, ancestors, node: ast.TypeName):
        names = _names(node.names)
        if len(names) > 1 and names[0] != "pg_catalog":
            raise SqlRefused(f"Type {'.'.join(names)} is not a built-in type.")

    def visit_RangeTableSample(self, ancestors, node: ast.RangeTableSample):
        names = _names(node.method)
        if names[-1].lower() not in SAFE_TABLESAMPLE_METHODS or len(names) > 1:
            raise SqlRefused(f"TABLESAMPLE method {'.'.join(names)} is not allowed.")

    def visit_ParamRef(self, ancestors, node):
        raise SqlRefused("Query parameters ($1) are not supported; write the values inline.")

    def visit_RangeVar(self, ancestors, node: ast.RangeVar):
        if node.catalogname:
            raise SqlRefused(
                f"Cross-database reference {node.catalogname}.{node.schemaname}.{node.relname} "
                "is not allowed."
            )
        schema, table = node.schemaname, node.relname
        refusal = relation_refusal(schema, table, self.policy)
        if refusal:
            raise SqlRefused(refusal)
        self.tables.add(f"{schema}.{table}" if schema else table)
