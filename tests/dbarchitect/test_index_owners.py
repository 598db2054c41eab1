"""Findings worth a DBA's time: no tiny drops, and no raw DROP of an index a migration owns."""

import pytest
from django.test import override_settings

from dbarchitect.collector import Collection
from dbarchitect.health import HealthFinding
from dbarchitect.index_owners import index_owner
from dbarchitect.migration_writer import MigrationWriteError, migration_files_write
from dbarchitect.models import AuditRun, Target
from dbarchitect.proposals import proposal_candidates
from dbarchitect.recording import (
    AuditFindings,
    findings_worth_proposing,
    optimization_logs_build,
    small_drops_count,
)

MB = 1024 * 1024


def _drop(table: str, index: str, size: int, kind: str = "drop_index") -> HealthFinding:
    return HealthFinding(
        kind=kind,
        schema="public",
        table=table,
        index=index,
        columns=["x"],
        ddl=f'DROP INDEX CONCURRENTLY IF EXISTS "public"."{index}"',
        reason="duplicate: its key columns (x) are a prefix of index y",
        size_bytes=size,
        fingerprint=f"{kind}:public.{index}",
    )


def test_an_index_from_meta_indexes_names_remove_index():
    owner = index_owner(table="optimizations_optimizationlog", index="optlog_impact")
    assert (owner.app_label, owner.model, owner.source) == (
        "optimizations",
        "OptimizationLog",
        "Meta.indexes",
    )
    assert "migrations.RemoveIndex(model_name='optimizationlog', name='optlog_impact')" in (
        owner.operation
    )


def test_a_db_index_field_index_and_its_like_twin_name_the_field_change():
    owner = index_owner(table="auth_permission", index="auth_permission_content_type_id_2f476e4b")
    assert (owner.app_label, owner.model, owner.source) == ("auth", "Permission", "db_index")
    assert "set db_index=False on auth.Permission.content_type" in owner.operation
    like = index_owner(table="auth_user", index="auth_user_username_6821ab7c_like")
    assert (like.model, like.source) == ("User", "unique")


def test_an_index_no_model_declares_has_no_owner():
    assert index_owner(table="demo_behavior_log", index="demo_behavior_log_by_hand_idx") is None
    assert index_owner(table="auth_permission", index="auth_permission_content_type_id_2f476e4b",
                       schema="shop") is None  # fmt: skip


@override_settings(DBARCHITECT_UNUSED_INDEX_MIN_BYTES=MB)
def test_drops_below_the_size_threshold_are_counted_not_proposed():
    findings = [
        _drop("demo_user", "small_idx", 16_384),
        _drop("demo_user", "big_idx", 12 * MB),
        _drop("demo_user", "broken_idx", 8_192, kind="invalid_index"),  # invalid: always said
    ]
    kept = findings_worth_proposing(findings)
    assert [f.index for f in kept] == ["big_idx", "broken_idx"]
    assert small_drops_count(findings) == 1


@pytest.mark.django_db
@override_settings(DBARCHITECT_UNUSED_INDEX_MIN_BYTES=0)
def test_a_migration_owned_drop_carries_the_migration_change_and_no_sql(tmp_path):
    target, _ = Target.objects.get_or_create(name="default")
    audit = AuditRun.objects.create(target=target, status=AuditRun.Status.RUNNING)
    owned = _drop("auth_permission", "auth_permission_content_type_id_2f476e4b", 16_384)
    by_hand = _drop("demo_behavior_log", "demo_behavior_log_by_hand_idx", 16_384)
    found = AuditFindings(
        collection=Collection(stats=[], slow=[], stats_reset=None), findings=[owned, by_hand]
    )
    logs = {log.details["index"]: log for log in optimization_logs_build(audit=audit, found=found)}

    log = logs[owned.index]
    assert log.ddl == "" and log.query_text == ""  # nothing to apply or paste as raw SQL
    assert log.recommendation.startswith("Remove index (by a migration)")
    assert "app auth (model Permission, db_index)" in log.recommendation
    assert log.details["django_owner"]["operation"].startswith("set db_index=False")
    assert logs[by_hand.index].ddl == by_hand.ddl  # an index no app owns: the DROP stays
    log.confidence = logs[by_hand.index].confidence = 0.99
    assert proposal_candidates(list(logs.values()), threshold=0.5) == []
    with pytest.raises(MigrationWriteError, match="Expected one CREATE INDEX statement"):
        migration_files_write(ddls=[by_hand.ddl], repo_root=tmp_path, name_suffix="x")
