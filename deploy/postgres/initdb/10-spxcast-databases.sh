#!/bin/sh
# First start of an empty data volume only (the postgres image runs /docker-entrypoint-initdb.d/ then):
# one role and database per component, passwords from the environment compose passes from deploy/.env.
# spxcast also owns the Optuna database, where training workers share their studies.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v spxcast_password="$SPXCAST_DB_PASSWORD" \
    -v mlflow_password="$MLFLOW_DB_PASSWORD" \
    -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE spxcast LOGIN PASSWORD :'spxcast_password';
CREATE DATABASE spxcast OWNER spxcast;
CREATE DATABASE optuna OWNER spxcast;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
SQL
