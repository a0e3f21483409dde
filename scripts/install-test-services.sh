#!/usr/bin/env bash
# Install what the STAC tests start themselves: PostgreSQL 15 + PostGIS 3 (Debian packages) and, into
# the project venv, pgstac (pypgstac) and stac-fastapi-pgstac served by uvicorn; and what the store tests
# start: the Azurite Azure Blob emulator (npm azurite@3.37.0, node/npm from Debian when missing) into the
# git-ignored .cache/azurite of the checkout. Idempotent: when
# everything is present it only checks and returns in about a second.
#
# usage: bash scripts/install-test-services.sh [PYTHON]   (PYTHON defaults to .venv/bin/python)
set -euo pipefail
PY="${1:-.venv/bin/python}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

need_apt=()
for pkg in postgresql-15 postgresql-15-postgis-3; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need_apt+=("$pkg")
    fi
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "install-test-services: apt-get install ${need_apt[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # the Debian package starts a cluster on :5432; the tests run their own in a temp dir
    $SUDO pg_ctlcluster 15 main stop 2>/dev/null || true
fi

if ! "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md
want = {"stac-fastapi-pgstac": "7.2.0", "pypgstac": "0.10.0"}
for name, ver in want.items():
    assert md.version(name) == ver, name
import psycopg, uvicorn  # noqa: F401
PYEOF
then
    echo "install-test-services: pip install stac-fastapi-pgstac[server]==7.2.0 pypgstac[psycopg]==0.10.0"
    "$PY" -m pip install --quiet "stac-fastapi-pgstac[server]==7.2.0" "pypgstac[psycopg]==0.10.0"
fi
AZURITE_VERSION=3.37.0
AZ_DIR="$(pwd)/.cache/azurite"
if ! { [ -x "$AZ_DIR/node_modules/.bin/azurite-blob" ] && [ -f "$AZ_DIR/node_modules/azurite/package.json" ] \
        && grep -q "\"version\": \"$AZURITE_VERSION\"" "$AZ_DIR/node_modules/azurite/package.json"; }; then
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "install-test-services: apt-get install nodejs npm"
        if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    echo "install-test-services: npm install azurite@$AZURITE_VERSION into $AZ_DIR"
    mkdir -p "$AZ_DIR"
    [ -f "$AZ_DIR/package.json" ] || echo '{"name": "s2n-test-services", "private": true}' > "$AZ_DIR/package.json"
    npm install --prefix "$AZ_DIR" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
fi
echo "install-test-services: PostgreSQL 15 + PostGIS 3, pgstac 0.10.0, stac-fastapi-pgstac 7.2.0, azurite $AZURITE_VERSION ready"
