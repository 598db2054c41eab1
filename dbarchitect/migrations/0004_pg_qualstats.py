"""pg_qualstats in the app's own database, where the server has the package: audits of
the `default` target then read the constants its predicates really run with. In a schema
of its own, so its views and types stay out of the application's (ask-the-database reads
public). Without the package, or the right to create extensions, nothing changes and the
audit report says how to get it."""

from django.db import migrations

CREATE_WHERE_AVAILABLE = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_qualstats') THEN
        CREATE SCHEMA IF NOT EXISTS qualstats;
        CREATE EXTENSION IF NOT EXISTS pg_qualstats SCHEMA qualstats;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'pg_qualstats not created: %', SQLERRM;
END
$$
"""


class Migration(migrations.Migration):
    dependencies = [("dbarchitect", "0003_auditrun_stats_reset")]

    operations = [migrations.RunSQL(CREATE_WHERE_AVAILABLE, migrations.RunSQL.noop)]
