#!/bin/sh
# Writes random secrets for the dev overlay into secrets/ (git-ignored), once.
#   --force  replace existing ones (the Postgres data volume keeps the old role passwords:
#            delete the postgres PVC too, or ALTER ROLE by hand).
# Production never uses these files: see docs/deploy.md, "Secrets".
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
if [ -e secrets/postgres.env ] && [ "${1:-}" != "--force" ]; then
  echo "secrets/ already holds secrets; keeping them (pass --force to replace)"
  exit 0
fi
umask 077

# URL-safe random strings from the kernel's CSPRNG (no padding, safe inside a URI).
random() { head -c "$1" /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

superuser=$(random 24)
catalog_db=$(random 24)
search_db=$(random 24)
# A Fernet key is the URL-safe base64 of 32 random bytes (44 characters, with padding).
settings_key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')
admin_token=$(random 32)

cat > secrets/postgres.env <<EOT
superuser-password=$superuser
catalog-password=$catalog_db
search-password=$search_db
EOT
echo "uri=postgresql://catalog:$catalog_db@postgres:5432/catalog" > secrets/catalog-db.env
echo "uri=postgresql://search:$search_db@postgres:5432/search" > secrets/search-db.env
echo "settings-key=$settings_key" > secrets/catalog.env
echo "admin-token=$admin_token" > secrets/gateway.env
echo "wrote $(pwd)/secrets/*.env; the admin token is in secrets/gateway.env"
