#!/usr/bin/env bash
# Starts the local PostgreSQL cluster when it is down and makes the test role and database; exports
# PASSERELLE_TEST_DATABASE_URL. Sourced by scripts/test.sh after scripts/setup.sh (which defines as_root);
# a URL already set in the environment is kept as is.
set -euo pipefail

if [ -z "${PASSERELLE_TEST_DATABASE_URL:-}" ]; then
    cluster="$(pg_lsclusters --no-header | awk 'NR == 1 {print $1 " " $2}')"
    if [ -z "$cluster" ]; then
        as_root pg_createcluster "$(ls /usr/lib/postgresql | sort -n | tail -n 1)" main >&2
        cluster="$(pg_lsclusters --no-header | awk 'NR == 1 {print $1 " " $2}')"
    fi
    read -r pg_version pg_name <<< "$cluster"
    if ! pg_lsclusters --no-header | awk 'NR == 1 {print $4}' | grep -q online; then
        as_root pg_ctlcluster "$pg_version" "$pg_name" start >&2
    fi
    pg_port="$(pg_lsclusters --no-header | awk 'NR == 1 {print $3}')"
    psql_as_postgres() { as_root su postgres -c "psql -p $pg_port -v ON_ERROR_STOP=1 -qtA $*"; }
    for _ in $(seq 1 30); do psql_as_postgres "-c 'select 1'" >/dev/null 2>&1 && break; sleep 1; done
    if [ -z "$(psql_as_postgres "-c \"select 1 from pg_roles where rolname = 'passerelle_test'\"")" ]; then
        psql_as_postgres "-c \"create role passerelle_test login password 'passerelle_test'\"" >&2
    fi
    if [ -z "$(psql_as_postgres "-c \"select 1 from pg_database where datname = 'passerelle_test'\"")" ]; then
        psql_as_postgres "-c 'create database passerelle_test owner passerelle_test'" >&2
    fi
    export PASSERELLE_TEST_DATABASE_URL="postgresql+psycopg://passerelle_test:passerelle_test@127.0.0.1:$pg_port/passerelle_test"
fi
