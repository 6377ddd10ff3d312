#!/usr/bin/env bash
# The peers of the end-to-end benchmark, on the same sink (Postfix's smtp-sink):
#   install            Debian's postfix (smtp-sink, smtp-source, the MTA) with "No configuration"
#   sink-start DIR PORT / sink-stop    smtp-sink dumping each message to DIR (arrival = file mtime)
#   postfix-start SINKPORT / postfix-stop   Postfix on 127.0.0.1:25 relaying everything to the sink
# Postfix is configured for the peer measurement of ../shared/reference/performance-notes.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.mailstream/run"
mkdir -p "$RUN"

case "${1:-}" in
  install)
    command -v smtp-sink >/dev/null && command -v postfix >/dev/null && exit 0
    [ "$(id -u)" = 0 ] || { echo "install Debian's postfix package first (sudo apt-get install postfix)" >&2; exit 1; }
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
    ;;
  sink-start)
    dir=$2 port=$3
    "$0" sink-stop
    mkdir -p "$dir"
    chown nobody: "$dir" 2>/dev/null || true
    setsid smtp-sink -u nobody -d "$dir/%H%M%S." "127.0.0.1:$port" 512 >/dev/null 2>&1 < /dev/null &
    echo $! >"$RUN/bench-sink.pid"
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0; sleep 0.1; done
    echo "smtp-sink did not start on $port" >&2; exit 1
    ;;
  sink-stop)
    # smtp-sink listens with SO_REUSEPORT, so a leftover one would silently take half the
    # connections: stop every instance, and wait until none is left.
    pkill -x smtp-sink 2>/dev/null || true
    for _ in $(seq 50); do pgrep -x smtp-sink >/dev/null || break; sleep 0.1; done
    pkill -KILL -x smtp-sink 2>/dev/null || true
    rm -f "$RUN/bench-sink.pid"
    ;;
  postfix-start)
    port=$2
    # A minimal main.cf: Postfix's compiled-in defaults plus the peer set-up below.
    echo "compatibility_level = 3.7" >/etc/postfix/main.cf
    postconf -e "relayhost = [127.0.0.1]:$port" "inet_interfaces = loopback-only" "mydestination =" \
      "mynetworks = 127.0.0.0/8" "maillog_file = /var/log/postfix.log" "inet_protocols = ipv4" \
      "smtp_destination_concurrency_limit = 50" "default_destination_concurrency_limit = 50"
    postfix status >/dev/null 2>&1 && postfix reload >/dev/null 2>&1 || postfix start >/dev/null 2>&1
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null && exit 0; sleep 0.1; done
    echo "postfix did not start" >&2; exit 1
    ;;
  postfix-stop)
    postfix stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: peers.sh install|sink-start DIR PORT|sink-stop|postfix-start SINKPORT|postfix-stop" >&2; exit 2 ;;
esac
