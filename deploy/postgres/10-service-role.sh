#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d):
# the service role the platform connects as.  It owns nothing; `commons db grant-service-role`
# (the compose file's `grant` service, after each upgrade) gives it exactly the service's
# privileges (docs/operations.md, "The database role").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="$COMMONS_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE commons_app LOGIN PASSWORD :'password';
SQL
