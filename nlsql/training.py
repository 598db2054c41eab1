"""Writes to the retrieval memory: schema DDL, documentation, question-SQL pairs."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from django.db import transaction

from pgaccess.targets import DEFAULT_TARGET, UnknownTarget, target_connection

from .catalog import catalog_read, table_ddl
from .guard import SqlRefused, sql_check
from .models import TrainingItem
from .permissions import tables_check_permitted
from .runner import QueryFailed, query_plan
from .vectors import embed_text, embed_texts


class TrainingError(ValueError):
    """Training input that cannot be stored; str() says what to fix."""


def _check_target(target: str) -> None:
    try:
        target_connection(target)
    except UnknownTarget as exc:
        raise TrainingError(f"{exc}.") from None


def training_train_schema(*, target: str = DEFAULT_TARGET, created_by=None) -> int:
    """One DDL item per table of the target; replaces the target's previous schema items."""
    _check_target(target)
    tables = catalog_read(target=target)
    texts = [table_ddl(table) for table in tables]
    vectors = embed_texts(texts)
    items = [
        TrainingItem(
            kind=TrainingItem.Kind.DDL,
            target=target,
            text=text,
            table_name=table.qualified_name,
            embedding=vector,
            source=TrainingItem.Source.SCHEMA,
            created_by=created_by,
        )
        for table, text, vector in zip(tables, texts, vectors, strict=True)
    ]
    with transaction.atomic():
        TrainingItem.objects.filter(
            target=target, kind=TrainingItem.Kind.DDL, source=TrainingItem.Source.SCHEMA
        ).delete()
        TrainingItem.objects.bulk_create(items)
    return len(items)


def training_add_pair(
    *,
    question: str,
    sql: str,
    target: str = DEFAULT_TARGET,
    source: str = TrainingItem.Source.ADMIN,
    created_by=None,
) -> TrainingItem:
    """Store a question with its SQL; the SQL must pass the guard and plan on the target.

    Same pair twice: one row."""
    question, sql = _text("question", question), _text("sql", sql)
    _check_target(target)
    _check_sql(sql, target=target, user=created_by)
    return _pair_store(
        question=question, sql=sql, target=target, source=source, created_by=created_by
    )


def _pair_store(*, question: str, sql: str, target: str, source: str, created_by) -> TrainingItem:
    existing = TrainingItem.objects.filter(
        kind=TrainingItem.Kind.QUESTION_SQL, target=target, question=question, sql=sql
    ).first()
    if existing is not None:
        return existing
    return TrainingItem.objects.create(
        kind=TrainingItem.Kind.QUESTION_SQL,
        target=target,
        question=question,
        sql=sql,
        embedding=embed_text(question),
        source=source,
        created_by=created_by,
    )


def training_add_documentation(
    *,
    text: str,
    target: str = DEFAULT_TARGET,
    source: str = TrainingItem.Source.ADMIN,
    created_by=None,
) -> TrainingItem:
    """Store a piece of documentation. The same text twice: one row."""
    text = _text("documentation", text)
    _check_target(target)
    existing = TrainingItem.objects.filter(
        kind=TrainingItem.Kind.DOCUMENTATION, target=target, text=text
    ).first()
    if existing is not None:
        return existing
    return TrainingItem.objects.create(
        kind=TrainingItem.Kind.DOCUMENTATION,
        target=target,
        text=text,
        embedding=embed_text(text),
        source=source,
        created_by=created_by,
    )


@dataclass(frozen=True)
class FileEntry:
    question: str = ""
    sql: str = ""
    documentation: str = ""


def training_load_file(*, path: Path, target: str = DEFAULT_TARGET, created_by=None) -> int:
    """Load a YAML list of {question, sql} and {documentation} entries, all or nothing.

    Every entry is checked first, each query planned on the target: a query that cannot
    run there would teach the LLM a wrong example."""
    _check_target(target)
    entries = read_pairs_file(path)
    for number, entry in enumerate(entries, start=1):
        if entry.sql:
            try:
                _check_sql(entry.sql, target=target, user=created_by)
            except TrainingError as exc:
                raise TrainingError(f"Entry {number} ({entry.question!r}): {exc}") from None
    embed_texts([entry.documentation or entry.question for entry in entries])  # one batch
    common = {"target": target, "source": TrainingItem.Source.FILE, "created_by": created_by}
    with transaction.atomic():
        for entry in entries:
            if entry.documentation:
                training_add_documentation(text=entry.documentation, **common)
            else:
                _pair_store(question=entry.question, sql=entry.sql, **common)
    return len(entries)


def read_pairs_file(path: Path) -> list[FileEntry]:
    """Parse and validate the whole file before anything is stored."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrainingError(f"Cannot read {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{path} is not UTF-8 text (byte {exc.start}).") from None
    except yaml.YAMLError as exc:
        raise TrainingError(f"{path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise TrainingError(f"{path} is nested too deeply to be a list of entries.") from None
    if isinstance(data, dict) and "pairs" in data:
        data = data["pairs"]
    if not isinstance(data, list) or not data:
        raise TrainingError(f"{path} must hold a non-empty list of entries.")
    entries = []
    for number, raw in enumerate(data, start=1):
        if not isinstance(raw, dict):
            raise TrainingError(f"Entry {number} must be a mapping.")
        unknown = set(raw) - {"question", "sql", "documentation"}
        if unknown:
            raise TrainingError(f"Entry {number} has unknown keys: {', '.join(sorted(unknown))}.")
        if "documentation" in raw:
            text = _text(f"entry {number} documentation", raw["documentation"])
            entries.append(FileEntry(documentation=text))
            continue
        if "question" not in raw or "sql" not in raw:
            raise TrainingError(f"Entry {number} needs both question and sql (or documentation).")
        entry = FileEntry(
            question=_text(f"entry {number} question", raw["question"]),
            sql=_text(f"entry {number} sql", raw["sql"]),
        )
        try:
            _check_sql(entry.sql)
        except TrainingError as exc:
            raise TrainingError(f"Entry {number} ({entry.question!r}): {exc}") from None
        entries.append(entry)
    return entries


def _text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TrainingError(f"The {what} must be non-empty text.")
    if "\x00" in value:
        raise TrainingError(f"The {what} contains a NUL character.")
    return value.strip()


def _check_sql(sql: str, *, target: str | None = None, user=None) -> None:
    """Only SQL the guard would run (and, given a target, that plans there and that `user`
    may read) may become an example for the LLM."""
    try:
        checked = sql_check(sql)
        if target is not None:
            tables_check_permitted(tables=checked.tables, target=target, user=user)
    except SqlRefused as exc:
        raise TrainingError(f"The SQL is refused: {exc.reason}") from None
    if target is not None:
        try:
            query_plan(checked=checked, target=target)
        except QueryFailed as exc:
            raise TrainingError(f"The SQL does not run on target {target!r}: {exc}") from None
