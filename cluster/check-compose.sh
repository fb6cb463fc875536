#!/usr/bin/env bash
# Validate docker-compose.yml with the compose tool itself, then run the structural checks
# (test/integration/compose.test.ts: five nodes, three zones, healthchecks, volumes, secret,
# and every node's flags accepted by the real config parser).
#
# Needs no Docker engine: `config` only reads and renders the file.
# Uses `docker compose` (v2) if present, else `docker-compose` (Debian's 1.29 is fine).
# Missing both: in CI ($CI set, as root) installs Debian's docker-compose; elsewhere it
# prints why it skips and exits 0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif [[ -n "${CI:-}" ]]; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "check-compose: CI is set but no compose tool is installed and this is not root;" >&2
    echo "check-compose: install it first: apt-get install -y docker-compose" >&2
    exit 1
  fi
  echo "check-compose: installing Debian's docker-compose (CI)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq docker-compose >/dev/null
  compose=(docker-compose)
else
  echo "check-compose: SKIPPED: neither 'docker compose' nor 'docker-compose' is installed."
  echo "check-compose: install one (e.g. apt-get install -y docker-compose) to validate docker-compose.yml."
  exit 0
fi
echo "check-compose: using ${compose[*]} $("${compose[@]}" version --short 2>/dev/null || true)"

# Render with no .env and no RINGKV_SECRET from this shell, so the documented local default
# is what gets checked (a developer's own .env must not decide the outcome).
empty_env=$(mktemp)
trap 'rm -f "$empty_env"' EXIT
render() { env -u RINGKV_SECRET "${compose[@]}" -f docker-compose.yml --env-file "$empty_env" config "$@"; }

render -q
echo "check-compose: docker-compose.yml is valid"

services=$(render --services | sort | tr '\n' ' ')
if [[ "$services" != "n1 n2 n3 n4 n5 " ]]; then
  echo "check-compose: expected services n1..n5, got: $services" >&2
  exit 1
fi
volumes=$(render --volumes | wc -l)
if [[ "$volumes" -ne 5 ]]; then
  echo "check-compose: expected 5 named volumes (one per node), got $volumes" >&2
  exit 1
fi
echo "check-compose: services: $services; $volumes data volumes"

if [[ ! -x node_modules/.bin/vitest ]]; then
  echo "check-compose: node_modules missing: run npm ci first for the structural checks" >&2
  exit 1
fi
exec node_modules/.bin/vitest run test/integration/compose.test.ts
