#!/usr/bin/env bash
# `npm start`: build, create the database when missing, apply migrations, then run the auth
# worker(s) and the gateway on local PostgreSQL and Redis. Ctrl-C stops both in order.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/virtual_mfa}"
# The worker refuses its built-in development key unless told it is in development.
export NODE_ENV="${NODE_ENV:-development}"
WORKER_PROCESSES="${WORKER_PROCESSES:-1}"

echo "building…"
npm run --silent build
node dist/scripts/ensure-database.js
npx prisma migrate deploy

# Runs one process (`name`, then its command) and starts it again whenever it dies on its own, as
# a process manager would. For a worker: the gateway's calls fail closed while no worker answers,
# and another worker takes over what the dead one held. For the gateway: its clients get
# connection errors for a second, and it holds no state a restart loses. Either way a crash (out
# of memory, a bug) must not take the product down. A signal to stop is passed on, and the process
# is waited for while it drains.
supervise() {
  local name=$1 child stopping=""
  shift
  trap 'stopping=1; kill -TERM "$child" 2>/dev/null || true' TERM
  trap 'stopping=1' INT # Ctrl-C reached the process too; let it drain
  while true; do
    local started=$SECONDS status=0
    "$@" &
    child=$!
    # `wait` returns early when a trapped signal arrives; wait again until the process is gone.
    while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
    if [[ -n "$stopping" ]]; then exit 0; fi
    # One that dies while starting (no key, Redis unreachable) would only die again: say so.
    if ((SECONDS - started < 5)); then exit "$((status == 0 ? 1 : status))"; fi
    echo "$name $child exited (status $status); starting another in 1 s" >&2
    sleep 1
  done
}

pids=()
for ((i = 0; i < WORKER_PROCESSES; i++)); do
  # Only the first worker serves metrics on the default port; the others pick their own.
  if ((i > 0)); then
    WORKER_METRICS_PORT=0 supervise worker node dist/worker/main.js &
  else
    supervise worker node dist/worker/main.js &
  fi
  pids+=($!)
done
# A heap cap makes V8 collect before the heap balloons under load: the gateway's live heap is
# ~35 MB, and without a cap its resident size passed 290 MB in the listing benchmark (README,
# "Benchmarks"). 128 MB leaves ample room; raise GATEWAY_HEAP_MB if a deployment needs more.
# Two glibc malloc arenas instead of one per thread: the soak's mixed load otherwise left
# ~70 MB of fragmented arenas resident.
MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" supervise gateway \
  node --max-old-space-size="${GATEWAY_HEAP_MB:-128}" dist/src/main.js &
pids+=($!)

stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait || true; }
# Ctrl-C sends SIGINT to the whole process group, children included, so on INT only wait for
# them to drain: signalling them again would make a process skip its drain. A TERM sent to this
# script alone is passed on to each child once.
trap 'wait || true; exit 0' INT
trap 'stop; exit 0' TERM
status=0
wait -n "${pids[@]}" || status=$?
echo "a process exited (status $status); stopping the rest" >&2
stop
exit "$status"
