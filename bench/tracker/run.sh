#!/usr/bin/env bash
# Tracking requests/s and p99 of the one tracker process of the local stack (127.0.0.1:8090).
#   bench/tracker/run.sh [DURATION] [CONNECTIONS] [THREADS]
# Needs wrk (Debian: apt-get install -y wrk) and the running stack. Each request verifies a signed
# link and publishes one engagement event to Kafka (acks=all) before answering; the same process's
# Faust agents consume those events and count them. Also prints the tracker's CPU time per request
# (user+system, from /proc), which does not depend on what else the machine is running.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-20s}
CONNECTIONS=${2:-32}
THREADS=${3:-1}
PY=.mailstream/venv/bin/python
export LINKS=${LINKS:-/tmp/tracker-bench-links.txt}
"$PY" bench/tracker/make_links.py "$LINKS" 20000
PID=$(cat .mailstream/run/tracker.pid)
TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
echo "tracker pid $PID, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s bench/tracker/links.lua http://127.0.0.1:8090 >/dev/null  # warm-up
BEFORE=$(cpu_ticks)
OUT=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/tracker/links.lua http://127.0.0.1:8090)
AFTER=$(cpu_ticks)
echo "$OUT"
REQUESTS=$(echo "$OUT" | awk '/requests in/ {print $1}')
awk -v t=$((AFTER - BEFORE)) -v hz="$TICKS" -v n="$REQUESTS" \
  'BEGIN { printf "tracker CPU during the run: %.1f s for %d requests = %.0f us/request\n", t/hz, n, t/hz/n*1e6 }'
# The counting agents may lag behind the HTTP side under load: wait until every event is counted,
# and charge that CPU too (the sustainable rate is what one core serves with counting keeping up).
echo "engagement events not yet counted at the end: $("$PY" bench/tracker/lag.py)"
START=$(date +%s)
until [ "$("$PY" bench/tracker/lag.py)" -le 0 ]; do sleep 1; done
CAUGHT=$(cpu_ticks)
awk -v t=$((CAUGHT - BEFORE)) -v hz="$TICKS" -v n="$REQUESTS" -v s=$(($(date +%s) - START)) \
  'BEGIN { printf "counted all after %d s more; tracker CPU incl. counting: %.1f s = %.0f us/request (%.0f requests/s per fully used core)\n", s, t/hz, t/hz/n*1e6, n/(t/hz) }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
