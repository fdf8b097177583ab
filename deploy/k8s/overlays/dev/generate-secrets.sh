#!/bin/sh
# Writes random secrets for the dev overlay into secrets/ (git-ignored), once: files already
# there are kept, missing ones are added (a secret a newer version needs).
#   --force  replace them all (the Postgres data volume keeps the old role passwords:
#            delete the postgres PVC too, or ALTER ROLE by hand).
# Production never uses these files: see docs/deploy.md, "Secrets".
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
force=false
[ "${1:-}" = "--force" ] && force=true
umask 077

# URL-safe random strings from the kernel's CSPRNG (no padding, safe inside a URI).
random() { head -c "$1" /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
# Whether secrets/$1 is to be written.
wanted() { $force || [ ! -e "secrets/$1" ]; }

written=""
if wanted postgres.env; then
  superuser=$(random 24)
  catalog_db=$(random 24)
  search_db=$(random 24)
  cat > secrets/postgres.env <<EOT
superuser-password=$superuser
catalog-password=$catalog_db
search-password=$search_db
EOT
  # The database URLs carry these passwords: written with them.
  echo "uri=postgresql://catalog:$catalog_db@postgres:5432/catalog" > secrets/catalog-db.env
  echo "uri=postgresql://search:$search_db@postgres:5432/search" > secrets/search-db.env
  written="$written postgres.env catalog-db.env search-db.env"
fi
if wanted catalog.env; then
  # A Fernet key is the URL-safe base64 of 32 random bytes (44 characters, with padding).
  settings_key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')
  echo "settings-key=$settings_key" > secrets/catalog.env
  written="$written catalog.env"
fi
if wanted gateway.env; then
  echo "admin-token=$(random 32)" > secrets/gateway.env
  written="$written gateway.env"
fi
if wanted nats.env; then
  # NATS's config parser reads the password (data/nats/auth.conf): a letter first keeps it a
  # string, never a number or an option.
  echo "password=n$(random 32)" > secrets/nats.env
  written="$written nats.env"
fi
if [ -z "$written" ]; then
  echo "secrets/ already holds every secret; keeping them (pass --force to replace)"
else
  echo "wrote$written into $(pwd)/secrets/; the admin token is in secrets/gateway.env"
fi
