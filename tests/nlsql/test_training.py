"""Training from the catalog and files, and retrieval of the relevant context under a budget."""

import textwrap

import pytest
from django.db import connection

from demo.models import User
from nlsql.catalog import catalog_read
from nlsql.models import TrainingItem
from nlsql.retrieval import approx_tokens, context_retrieve
from nlsql.training import (
    TrainingError,
    training_add_pair,
    training_load_file,
    training_train_schema,
)
from nlsql.vectors import embed_texts

pytestmark = pytest.mark.django_db(transaction=True)


def test_train_on_schema_writes_one_ddl_item_per_table_with_keys_comments_and_rows(demo_data):
    with connection.cursor() as cursor:
        cursor.execute("COMMENT ON TABLE demo_user IS 'One row per learner'")
        cursor.execute("COMMENT ON COLUMN demo_user.email IS 'Login e-mail, unique'")
        cursor.execute("ANALYZE demo_user")
    try:
        count = training_train_schema(target="default")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("COMMENT ON TABLE demo_user IS NULL")
            cursor.execute("COMMENT ON COLUMN demo_user.email IS NULL")
    items = TrainingItem.objects.filter(kind="ddl", target="default")
    assert items.count() == count == len(catalog_read(target="default"))
    user = items.get(table_name="public.demo_user")
    assert user.text.startswith(f"-- One row per learner; about {len(demo_data)} rows\n")
    assert '"email" character varying(254) NOT NULL,  -- Login e-mail, unique' in user.text
    assert "PRIMARY KEY (id)" in user.text and "UNIQUE (email)" in user.text
    # Without a database comment, the Django model's help_text describes the column.
    assert f'"name" jsonb NOT NULL,  -- {User._meta.get_field("name").help_text}' in user.text
    log = items.get(table_name="public.demo_behavior_log")
    assert "FOREIGN KEY (user_id) REFERENCES demo_user(id)" in log.text
    assert log.source == "schema" and len(log.embedding) == 384
    # Denied tables are never trained (the LLM never learns they exist).
    assert not items.filter(table_name__in=["public.auth_user", "public.django_session"]).exists()


def test_retraining_the_schema_replaces_the_old_items_only(demo_data):
    training_add_pair(question="How many users?", sql="SELECT count(*) FROM demo_user")
    first = training_train_schema(target="default")
    old_ids = set(TrainingItem.objects.filter(kind="ddl").values_list("id", flat=True))
    second = training_train_schema(target="default")
    new_ids = set(TrainingItem.objects.filter(kind="ddl").values_list("id", flat=True))
    assert first == second == len(new_ids)
    assert not old_ids & new_ids
    assert TrainingItem.objects.filter(kind="question_sql").count() == 1


def test_pairs_file_loads_all_or_nothing(tmp_path, db):
    good = tmp_path / "good.yaml"
    good.write_text(
        textwrap.dedent(
            """\
            - question: How many users are there?
              sql: SELECT count(*) FROM demo_user
            - documentation: Users are learners.
            """
        )
    )
    assert training_load_file(path=good) == 2
    assert training_load_file(path=good) == 2  # idempotent: the pair is not stored twice
    assert TrainingItem.objects.filter(kind="question_sql").count() == 1

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            - question: Fine
              sql: SELECT 1
            - question: Wipe it
              sql: DELETE FROM demo_user
            """
        )
    )
    before = TrainingItem.objects.count()
    with pytest.raises(TrainingError, match=r"Entry 2 \('Wipe it'\): The SQL is refused"):
        training_load_file(path=bad)
    assert TrainingItem.objects.count() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{}", "non-empty list"),
        ("- 42", "Entry 1 must be a mapping"),
        ("- question: only a question", "needs both question and sql"),
        ("- question: q\n  sql: SELECT 1\n  extra: x", "unknown keys: extra"),
        ("- question: ''\n  sql: SELECT 1", "question must be non-empty text"),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_bad_pairs_files_are_clear_errors(tmp_path, db, content, message):
    path = tmp_path / "pairs.yaml"
    path.write_text(content)
    with pytest.raises(TrainingError, match=message):
        training_load_file(path=path)


def test_unknown_target_is_a_clear_error(db):
    with pytest.raises(TrainingError, match="Unknown target 'nope'"):
        training_add_pair(question="q", sql="SELECT 1", target="nope")


OTHER_TOPICS = [
    "invoices", "shipments", "warehouses", "suppliers", "payroll", "tax_rates", "coupons",
    "refunds", "carriers", "inventory_moves", "purchase_orders", "price_lists", "stores",
    "employees", "timesheets", "vehicles", "maintenance_jobs", "sensor_readings",
    "weather_stations", "flights", "airports", "hotel_rooms", "bookings", "recipes",
    "ingredients", "songs", "albums", "playlists", "patients", "prescriptions",
]  # fmt: skip


def _ddl(name: str) -> str:
    return (
        f"-- about 1000 rows\nCREATE TABLE public.{name} (\n  id bigint NOT NULL,\n"
        f"  {name}_code text NOT NULL,\n  amount numeric,\n  created_at timestamptz,\n"
        "  PRIMARY KEY (id)\n);"
    )


def test_retrieval_sends_only_the_relevant_tables_of_a_big_schema(demo_data, settings):
    """A 32-table schema, a small budget: the demo tables come back, the rest mostly not."""
    training_train_schema(target="default")
    TrainingItem.objects.filter(kind="ddl").exclude(
        table_name__in=["public.demo_user", "public.demo_behavior_log"]
    ).delete()
    texts = [_ddl(name) for name in OTHER_TOPICS]
    TrainingItem.objects.bulk_create(
        TrainingItem(kind="ddl", text=text, table_name=f"public.{name}", embedding=vector)
        for name, text, vector in zip(OTHER_TOPICS, texts, embed_texts(texts), strict=True)
    )
    budget = 800
    context = context_retrieve(
        question="Which users have the most behavior log events?", target="default",
        budget_tokens=budget,
    )  # fmt: skip
    tables = [retrieved.item.table_name for retrieved in context.ddl]
    assert set(tables[:2]) == {"public.demo_user", "public.demo_behavior_log"}
    assert sum(approx_tokens(r.item.text) for r in context.ddl) <= budget * 0.6
    assert len(tables) < len(OTHER_TOPICS) // 3
    similarities = [retrieved.similarity for retrieved in context.ddl]
    assert similarities == sorted(similarities, reverse=True)


def test_retrieval_keeps_targets_apart(demo_data):
    training_add_pair(question="How many users?", sql="SELECT count(*) FROM demo_user")
    assert context_retrieve(question="How many users?", target="default").pairs
    assert context_retrieve(question="How many users?", target="other").is_empty
