#!/usr/bin/env bash
# `npm test`: the whole suite against real PostgreSQL and Redis, on a database of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_ENV=test
export DATABASE_URL="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/virtual_mfa_test}"
# Some tests run the built gateway and worker as real processes, as `npm start` does.
npm run --silent build
npx tsx scripts/ensure-database.ts
npx prisma migrate deploy >/dev/null
exec npx vitest run "$@"
