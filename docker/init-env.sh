#!/bin/sh
# Create .env from .env.example with random secrets, once: an existing .env is left alone.
set -eu
cd "$(dirname "$0")/.."
if [ -e .env ]; then
  echo ".env exists; leaving it unchanged" >&2
  exit 0
fi
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
sed \
  -e "s/^SECRET_KEY=\$/SECRET_KEY=$(secret)/" \
  -e "s/^POSTGRES_PASSWORD=\$/POSTGRES_PASSWORD=$(secret)/" \
  -e "s/^METRICS_BEARER_TOKEN=\$/METRICS_BEARER_TOKEN=$(secret)/" \
  -e "s/^GRAFANA_ADMIN_PASSWORD=\$/GRAFANA_ADMIN_PASSWORD=$(secret)/" \
  .env.example > .env
echo "wrote .env with random secrets (Grafana admin password: see GRAFANA_ADMIN_PASSWORD in .env)"
