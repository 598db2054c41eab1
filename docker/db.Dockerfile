# PostgreSQL 15 with what the audit needs: pgvector (the agent's memory), HypoPG (what-if
# indexes) and pg_stat_statements (preloaded by the compose `command`). The official image
# already has the PGDG apt repository these packages come from.
FROM postgres:15-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "postgresql-${PG_MAJOR}-pgvector" \
        "postgresql-${PG_MAJOR}-hypopg" \
    && rm -rf /var/lib/apt/lists/*
