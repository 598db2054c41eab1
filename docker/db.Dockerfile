# PostgreSQL 15 with what the audit needs: pgvector (the agent's memory), HypoPG (what-if
# indexes), pg_stat_statements and pg_qualstats (the predicates' real constants; both
# preloaded by the compose `command`). The official image already has the PGDG apt
# repository these packages come from.
FROM postgres:15-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "postgresql-${PG_MAJOR}-pgvector" \
        "postgresql-${PG_MAJOR}-hypopg" \
        "postgresql-${PG_MAJOR}-pg-qualstats" \
    && rm -rf /var/lib/apt/lists/*
