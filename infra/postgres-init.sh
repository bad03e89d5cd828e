#!/bin/sh
# First start of the postgres service (docker-entrypoint-initdb.d): one role and one database for Prefect (with the
# pg_trgm extension its server needs) and one for MLflow, each with its own password from infra/.env.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v prefect_pw="$PREFECT_DB_PASSWORD" -v mlflow_pw="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE prefect LOGIN PASSWORD :'prefect_pw';
CREATE DATABASE prefect OWNER prefect;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE mlflow OWNER mlflow;
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL
