# Shared helpers of the local stack scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE="$ROOT/.mailstream"
RUN="$STATE/run"
LOGS="$STATE/logs"
VENV="$STATE/venv"
PY="$VENV/bin/python"
mkdir -p "$RUN" "$LOGS"

KAFKA_VERSION=${MAILSTREAM_KAFKA_VERSION:-4.1.1}

say() { printf '%s\n' "mailstream: $*" >&2; }
die() { say "$*"; exit 1; }

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

is_running() {  # $1=name
  local pid; pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Start a command in its own session, output to the state folder, pid recorded.
start_bg() {  # $1=name, rest=command
  local name=$1; shift
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}

stop_pid() {  # $1=name [$2=seconds before KILL]
  local name=$1 grace=${2:-20} pid
  pid=$(pid_of "$name")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name did not stop in ${grace}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$RUN/$name.pid"
}

# Wait until a URL answers 200, or fail naming the component and showing its log.
wait_http() {  # $1=name $2=url $3=timeout seconds
  local name=$1 url=$2 deadline=$((SECONDS + ${3:-60}))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ! is_running "$name"; then
      say "$name exited during start; last lines of $LOGS/$name.log:"; tail -n 40 "$LOGS/$name.log" >&2; return 1
    fi
    if (( SECONDS >= deadline )); then
      say "$name not ready at $url after ${3:-60}s; last lines of $LOGS/$name.log:"
      tail -n 40 "$LOGS/$name.log" >&2; return 1
    fi
    sleep 0.2
  done
}

uses_external_database() { [ -n "${MAILSTREAM_DATABASE_URL:-}" ]; }
