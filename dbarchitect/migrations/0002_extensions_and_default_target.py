"""The extensions the audit reads on its own database, and the `default` target."""

import logging

from django.db import migrations

logger = logging.getLogger(__name__)

EXTENSIONS = ["hypopg", "pg_stat_statements"]


def create_extensions(apps, schema_editor):
    # A role without the right to create extensions still migrates; the system check
    # dbarchitect.E002/E003 then names what is missing.
    connection = schema_editor.connection
    for name in EXTENSIONS:
        with connection.cursor() as cursor:
            cursor.execute("SAVEPOINT dbarchitect_ext")
            try:
                cursor.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}"')
            except Exception as exc:  # noqa: BLE001  (any failure: report, go on)
                cursor.execute("ROLLBACK TO SAVEPOINT dbarchitect_ext")
                logger.warning("could not create extension %s: %s", name, exc)
            else:
                cursor.execute("RELEASE SAVEPOINT dbarchitect_ext")


def create_default_target(apps, schema_editor):
    Target = apps.get_model("dbarchitect", "Target")
    Target.objects.get_or_create(name="default", defaults={"allow_verify": True})


class Migration(migrations.Migration):
    dependencies = [("dbarchitect", "0001_initial")]

    operations = [
        migrations.RunPython(create_extensions, migrations.RunPython.noop),
        migrations.RunPython(create_default_target, migrations.RunPython.noop),
    ]
