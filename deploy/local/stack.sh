#!/usr/bin/env bash
# The local stack: `stack.sh run|stop|status|test [TIER]|up|infra|restart NAME|dns-publish|dns-withdraw`. Idempotent; state in .mailstream/.
source "$(dirname "$0")/lib.sh"
HERE="$ROOT/deploy/local"
cd "$ROOT"

# name  port  readiness URL  command
SERVICES=(
  "gateway 8080 http://127.0.0.1:8080/readyz mailstream.gateway"
  "renderer 8081 http://127.0.0.1:8081/readyz mailstream.renderer"
  "sender 8082 http://127.0.0.1:8082/readyz mailstream.sender"
  "tracker 8090 http://127.0.0.1:8090/readyz mailstream.tracker"
  "fanout 8083 http://127.0.0.1:8083/readyz mailstream.gateway.fanout"
  "triggers 8086 http://127.0.0.1:8086/readyz mailstream.gateway.triggers"
  "webhooks 8084 http://127.0.0.1:8084/readyz mailstream.gateway.webhooks"
)

# The development DNS server: the stack's own names (mailstream.test, mailstream.local) from
# .mailstream/dns/*.conf, every other name forwarded to the system's resolvers. Domain verification
# asks it (the gateway inherits MAILSTREAM_DNS_NAMESERVERS from here).
DNS_PORT=5354
export MAILSTREAM_DNS_NAMESERVERS=${MAILSTREAM_DNS_NAMESERVERS:-127.0.0.1:$DNS_PORT}
DEMO_DOMAIN=demo.mailstream.test

# The feedback-loop endpoints refuse everything unless configured: the local stack's credentials.
while IFS='=' read -r name value; do
  if [[ "$name" =~ ^MAILSTREAM_[A-Z_]+$ ]] && [ -z "${!name:-}" ]; then export "$name=$value"; fi
done <"$HERE/feedback.env"

# The schema registry trigger rules may name: the tests' registry (tests/support/schema_registry.py);
# set it empty to allow none, as in production by default.
export MAILSTREAM_TRIGGER_REGISTRY_URLS=${MAILSTREAM_TRIGGER_REGISTRY_URLS-http://127.0.0.1:8087}

# Webhooks may target loopback here (only): the tests' receivers listen on 127.0.0.1 (docs/webhooks.md);
# none in production by default.
export MAILSTREAM_WEBHOOK_ALLOWED_NETWORKS=${MAILSTREAM_WEBHOOK_ALLOWED_NETWORKS-127.0.0.0/8,::1/128}

infra() {
  "$HERE/python-env.sh"
  "$HERE/system-packages.sh"
  "$HERE/kafka.sh" start
  "$HERE/postgres.sh" start
  sink_up
  dns_up
  registry_up
  "$VENV/bin/mailstream" topics create
  "$VENV/bin/mailstream" db migrate
}

# Confluent's wire format on the topics (MAILSTREAM_SCHEMA_REGISTRY_URL, docs/events.md): at the
# local registry's address, the stack runs that registry (deploy/local/schema_registry.py, its
# subjects kept in .mailstream/schema-registry.json); any other address is the operator's own.
LOCAL_REGISTRY=http://127.0.0.1:8085

registry_up() {
  [ "${MAILSTREAM_SCHEMA_REGISTRY_URL:-}" = "$LOCAL_REGISTRY" ] || return 0
  is_running registry || start_bg registry "$PY" "$HERE/schema_registry.py" --port 8085 --data "$STATE/schema-registry.json"
  wait_http registry "$LOCAL_REGISTRY/healthz" 30
}

sink_up() {
  is_running sink || start_bg sink "$PY" "$HERE/mailsink.py"
  wait_http sink http://127.0.0.1:8025/healthz 30
}

dns_up() {
  local dir="$STATE/dns"
  mkdir -p "$dir"
  "$PY" "$HERE/dev-dns.py" base >"$dir/base.conf"
  is_running dns && return 0
  start_bg dns "$(command -v dnsmasq || echo /usr/sbin/dnsmasq)" --keep-in-foreground --conf-file=/dev/null \
    --no-hosts --pid-file= --bind-interfaces --listen-address=127.0.0.1 --port="$DNS_PORT" \
    --local=/mailstream.test/ --local=/mailstream.local/ --conf-dir="$dir,*.conf"
  local deadline=$((SECONDS + 10))
  until "$PY" -c "import dns.resolver as r; x = r.Resolver(configure=False); x.nameservers = ['127.0.0.1']; \
x.port = $DNS_PORT; x.resolve('bounces.mailstream.local', 'A', lifetime=1)" 2>/dev/null; do
    is_running dns || { say "dnsmasq exited; last lines of $LOGS/dns.log:"; tail -n 20 "$LOGS/dns.log" >&2; return 1; }
    (( SECONDS < deadline )) || die "the development DNS server does not answer on 127.0.0.1:$DNS_PORT"
    sleep 0.2
  done
}

# `stack.sh dns-publish [NAME] < view.json`: the records of a sending domain's view (the API's or
# `mailstream domains add --json`) served by the development DNS from .mailstream/dns/NAME.conf
# (NAME: the domain by default; a fixed NAME replaces what it published before).
# `stack.sh dns-withdraw NAME` stops serving them. The server reads TXT records at start only.
dns_publish() {  # [$1=NAME]
  local view name conf
  view=$(cat)
  name=${1:-$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["domain"])' <<<"$view")}
  conf="$STATE/dns/$name.conf"
  mkdir -p "$STATE/dns"
  "$PY" "$HERE/dev-dns.py" domain <<<"$view" >"$conf.new"
  if cmp -s "$conf.new" "$conf"; then rm "$conf.new"; else mv "$conf.new" "$conf"; stop_pid dns 5; dns_up; fi
}

dns_withdraw() {  # $1=NAME
  rm -f "$STATE/dns/$1.conf"
  stop_pid dns 5
  dns_up
}

# The demo account gets the policy's "pair" pool as its dedicated IPs and the sending domain
# demo.mailstream.test, whose records the development DNS server publishes, verified.
demo_domain() {  # $1=the demo API key
  local api=http://127.0.0.1:8080 auth=(-H "Authorization: Bearer $1" -H 'Content-Type: application/json')
  local view
  curl -fsS -o /dev/null -XPUT "$api/mailstream/v1/ips" "${auth[@]}" -d '{"pool": "pair"}'
  view=$(curl -fsS "$api/mailstream/v1/sending-domains/$DEMO_DOMAIN" "${auth[@]}" 2>/dev/null) ||
    view=$(curl -fsS -XPOST "$api/mailstream/v1/sending-domains" "${auth[@]}" -d "{\"domain\": \"$DEMO_DOMAIN\"}")
  dns_publish demo <<<"$view"
  curl -fsS -XPOST "$api/mailstream/v1/sending-domains/$DEMO_DOMAIN/verify" "${auth[@]}" |
    "$PY" -c 'import json, sys; v = json.load(sys.stdin); sys.exit(0 if v["verified"] else
      "the demo domain did not verify: " + "; ".join(r["reason"] for r in v["records"] if r["status"] != "VERIFIED"))'
}

services_up() {
  local line name port url module
  for line in "${SERVICES[@]}"; do
    read -r name port url module <<<"$line"
    is_running "$name" || start_bg "$name" "$PY" -m "$module"
  done
  for line in "${SERVICES[@]}"; do
    read -r name port url module <<<"$line"
    wait_http "$name" "$url" 90
  done
}

up() { infra; services_up; }

restart() {  # $1=service name (or sink): stop it and start it again with the current code
  local line name
  if [ "$1" = sink ]; then stop_pid sink 5; sink_up; return; fi
  if [ "$1" = dns ]; then stop_pid dns 5; dns_up; return; fi  # re-reads .mailstream/dns/*.conf
  for line in "${SERVICES[@]}"; do
    read -r name _ <<<"$line"
    if [ "$name" = "$1" ]; then stop_pid "$name" 30; services_up; return; fi
  done
  die "no service named $1"
}

stop_all() {
  local line name stoppers=()
  # The services stop in parallel (each finishes its in-flight work), then the stack under them.
  # Wait for the stoppers only: this shell may also be the parent of the processes it started.
  for line in "${SERVICES[@]}"; do
    read -r name _ <<<"$line"
    stop_pid "$name" 30 &
    stoppers+=($!)
  done
  wait "${stoppers[@]}"
  stop_pid registry 5
  stop_pid sink 5
  stop_pid dns 5
  "$HERE/kafka.sh" stop
  "$HERE/postgres.sh" stop
}

# Resident memory of a process and its children, in MB (PostgreSQL is a process tree).
rss_mb() {  # $1=pid
  local pids
  pids=$(printf '%s\n' "$1" $(pgrep -P "$1") | paste -sd,)
  ps -o rss= -p "$pids" 2>/dev/null | awk '{s += $1} END {printf "%d\n", s / 1024}'
}

status() {
  printf '%-9s %-8s %-6s %-8s %s\n' NAME PID PORT RSS_MB HEALTH
  local rows=("kafka 9092 -" "postgres 5432 -" "sink 2525 http://127.0.0.1:8025/healthz" "dns $DNS_PORT -")
  is_running registry && rows+=("registry 8085 $LOCAL_REGISTRY/healthz")
  local line name port url module health pid
  for line in "${SERVICES[@]}"; do
    read -r name port url module <<<"$line"; rows+=("$name $port http://127.0.0.1:$port/healthz")
  done
  for line in "${rows[@]}"; do
    read -r name port url <<<"$line"
    pid=$(pid_of "$name")
    if [ "$name" = postgres ] && uses_external_database; then
      printf '%-9s %-8s %-6s %-8s %s\n' postgres - - - "external (MAILSTREAM_DATABASE_URL)"; continue
    fi
    if ! is_running "$name"; then
      health=stopped
    elif [ "$url" = - ]; then
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then health=listening; else health=starting; fi
    elif curl -fsS -o /dev/null --max-time 2 "$url"; then health=healthy
    else health=unhealthy; fi
    printf '%-9s %-8s %-6s %-8s %s\n' "$name" "${pid:--}" "$port" "$(if is_running "$name"; then rss_mb "$pid"; else echo -; fi)" "$health"
  done
}

run() {
  local started=$SECONDS
  up
  local keyfile="$STATE/demo-api-key"
  if [ ! -s "$keyfile" ]; then
    "$VENV/bin/mailstream" accounts create demo >"$keyfile.new" && mv "$keyfile.new" "$keyfile"
  fi
  demo_domain "$(cat "$keyfile")"
  local wire_format="Avro single-object encoding"
  [ -n "${MAILSTREAM_SCHEMA_REGISTRY_URL:-}" ] && wire_format="Confluent's, schema registry $MAILSTREAM_SCHEMA_REGISTRY_URL"
  cat <<MSG
mailstream is running ($((SECONDS - started)) s).
  demo account API key:  $(cat "$keyfile")
  its sending domain:    $DEMO_DOMAIN (verified; dedicated IPs 127.0.0.2, 127.0.0.3: pool "pair")
  HTTP API:              http://127.0.0.1:8080  (POST /marketing/v3/transactional/single-email/send)
  SMTP submission:       127.0.0.1:2587 (STARTTLS), 127.0.0.1:2465 (implicit TLS)
  admin console:         http://127.0.0.1:8080/console  (a user's password: mailstream users set-password, docs/console.md)
  tracking:              http://127.0.0.1:8090
  mail sink:             smtp 127.0.0.1:2525, messages at http://127.0.0.1:8025/api/messages
  Kafka:                 127.0.0.1:9092      PostgreSQL: 127.0.0.1:5432      DNS: 127.0.0.1:$DNS_PORT
  topics' wire format:   $wire_format
  logs:                  $LOGS
  stop with:             make stop
MSG
}

# `stack.sh test [TIER] [pytest arguments]`. Without a tier (`make test`): ruff, the policy check,
# the stack up, every test (faults last), the stack stopped again unless it was running before.
# With one: unit runs `pytest -m unit` and needs no stack (its tests open no sockets), so it only
# prepares the Python environment; integration, e2e and faults start the stack as above (no lint).
# When this starts the tracker, its link-scanner window is 1 s (MAILSTREAM_LINK_SCANNER_WINDOW_S,
# exported to the services and to pytest, which waits it out); a tracker already running keeps
# its own window and the environment is left alone, so the tests read the one it reads. In the
# same way, a stack this starts writes Confluent's wire format with the local schema registry
# (MAILSTREAM_SCHEMA_REGISTRY_URL; set it empty for single-object encoding), so the tests read
# the topics as Kafka Connect and kcat do.
TEST_TIERS="unit integration e2e faults"

run_tests() {
  local tier="" select=()
  if [[ " $TEST_TIERS " == *" ${1:-none} "* ]]; then tier=$1; select=(-m "$tier"); shift; fi
  "$HERE/python-env.sh"
  if [ "$tier" = unit ]; then
    (cd "$ROOT" && "$PY" -m pytest "${select[@]}" "$@")
    return
  fi
  local was_running=0
  is_running gateway && was_running=1
  is_running tracker || export MAILSTREAM_LINK_SCANNER_WINDOW_S="${MAILSTREAM_LINK_SCANNER_WINDOW_S:-1}"
  is_running gateway || export MAILSTREAM_SCHEMA_REGISTRY_URL="${MAILSTREAM_SCHEMA_REGISTRY_URL-$LOCAL_REGISTRY}"
  if [ -z "$tier" ]; then
    (cd "$ROOT" && "$VENV/bin/ruff" check . && "$VENV/bin/ruff" format --check .)
    (cd "$ROOT" && "$PY" -m mailstream.sender.policy check deploy/policy)
  fi
  up
  local rc=0
  (cd "$ROOT" && "$PY" -m pytest "${select[@]}" "$@") || rc=$?
  [ "$was_running" = 1 ] || stop_all
  return "$rc"
}

case "${1:-}" in
  run) run ;;
  up) up ;;
  restart) restart "${2:?service name}" ;;
  infra) infra ;;
  stop) stop_all ;;
  status) status ;;
  test) shift; run_tests "$@" ;;
  dns-publish) dns_publish "${2:-}" ;;
  dns-withdraw) dns_withdraw "${2:?name}" ;;
  *) die "usage: stack.sh run|stop|status|test [unit|integration|e2e|faults] [pytest args]|up|infra|restart NAME|dns-publish [NAME] < view.json|dns-withdraw NAME" ;;
esac
