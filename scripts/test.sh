#!/usr/bin/env bash
# `npm test`: the whole suite against real PostgreSQL and Redis, on a database of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_ENV=test
export DATABASE_URL="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/virtual_mfa_test}"
# Some tests run the built gateway and worker as real processes, as `npm start` does.
npm run --silent build
# A fresh database each run: no test can lean on rows an earlier run left behind, and the
# whole-database secrecy scans stay the size of one run.
npx tsx scripts/ensure-database.ts --recreate
npx prisma migrate deploy >/dev/null
exec npx vitest run "$@"
