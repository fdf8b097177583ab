#!/bin/sh
# Runs once, on an empty data directory (the image's /docker-entrypoint-initdb.d hook).
# Each service owns its database and role; pgvector is created here because CREATE EXTENSION
# vector needs a superuser and the search role is not one.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v catalog_password="$CATALOG_DB_PASSWORD" -v search_password="$SEARCH_DB_PASSWORD" <<'SQL'
CREATE ROLE catalog LOGIN PASSWORD :'catalog_password';
CREATE DATABASE catalog OWNER catalog;
REVOKE ALL ON DATABASE catalog FROM PUBLIC;
CREATE ROLE search LOGIN PASSWORD :'search_password';
CREATE DATABASE search OWNER search;
REVOKE ALL ON DATABASE search FROM PUBLIC;
\connect search
CREATE EXTENSION IF NOT EXISTS vector;
SQL
