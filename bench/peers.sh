#!/usr/bin/env bash
# The peers of the end-to-end benchmark, on the same sink (Postfix's smtp-sink):
#   install            Debian's postfix (smtp-sink, smtp-source, the MTA) with "No configuration",
#                      opendkim (the Postfix peer's DKIM signer) and wrk (the HTTP load generator)
#   sink-start DIR PORT / sink-stop [PORT]   smtp-sink dumping each message to DIR (arrival = file mtime)
#   sink-pid PORT      the pid of the smtp-sink on PORT
#   postfix-start SINKPORT [dkim] / postfix-stop
#                      Postfix on 127.0.0.1:25 relaying everything to the sink; with `dkim`, every
#                      message is signed by OpenDKIM (a milter on a local socket, its own 2048-bit
#                      key for peer.example), as mailstream's sender signs its own
# Postfix is configured for the peer measurement of ../shared/reference/performance-notes.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.mailstream/run"
DKIM_DIR="$ROOT/.mailstream/bench/opendkim"
# Inside Postfix's chroot (Debian runs smtpd chrooted in /var/spool/postfix).
MILTER_DIR=/var/spool/postfix/opendkim
mkdir -p "$RUN"

sink_pidfile() { echo "$RUN/bench-sink-$1.pid"; }

stop_sink_on() {  # $1=port
  local pidfile pid
  pidfile=$(sink_pidfile "$1")
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -f "$pidfile"
  # smtp-sink listens with SO_REUSEPORT, so a leftover one on the same address would silently
  # take half the connections: stop those too (only those on this port, not other runs' sinks).
  for pid in $(pgrep -x smtp-sink || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q " 127.0.0.1:$1 "; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

opendkim_start() {
  mkdir -p "$DKIM_DIR" "$MILTER_DIR"
  if [ ! -s "$DKIM_DIR/peer.private" ]; then
    openssl genrsa -out "$DKIM_DIR/peer.private" 2048 2>/dev/null
  fi
  chown opendkim: "$DKIM_DIR/peer.private" && chmod 600 "$DKIM_DIR/peer.private"
  chown opendkim:postfix "$MILTER_DIR" && chmod 750 "$MILTER_DIR"
  cat >"$DKIM_DIR/opendkim.conf" <<CONF
Syslog                no
Mode                  s
Domain                peer.example
Selector              peer
KeyFile               $DKIM_DIR/peer.private
Canonicalization      relaxed/relaxed
SignatureAlgorithm    rsa-sha256
InternalHosts         127.0.0.1
Socket                local:$MILTER_DIR/opendkim.sock
PidFile               $MILTER_DIR/opendkim.pid
UserID                opendkim:postfix
UMask                 007
CONF
  opendkim_stop
  opendkim -x "$DKIM_DIR/opendkim.conf"
  for _ in $(seq 50); do [ -S "$MILTER_DIR/opendkim.sock" ] && return 0; sleep 0.1; done
  echo "opendkim did not create its socket $MILTER_DIR/opendkim.sock" >&2; exit 1
}

opendkim_stop() {
  local pid
  pid=$(cat "$MILTER_DIR/opendkim.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$MILTER_DIR/opendkim.pid" "$MILTER_DIR/opendkim.sock"
}

case "${1:-}" in
  install)
    missing=()
    command -v smtp-sink >/dev/null && command -v postfix >/dev/null || missing+=(postfix)
    command -v opendkim >/dev/null || missing+=(opendkim)
    command -v wrk >/dev/null || missing+=(wrk)
    [ ${#missing[@]} = 0 ] && exit 0
    [ "$(id -u)" = 0 ] || { echo "install Debian's ${missing[*]} first (sudo apt-get install ${missing[*]})" >&2; exit 1; }
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    ;;
  sink-start)
    dir=$2 port=$3
    stop_sink_on "$port"
    mkdir -p "$dir"
    chown nobody: "$dir" 2>/dev/null || true
    setsid smtp-sink -u nobody -d "$dir/%H%M%S." "127.0.0.1:$port" 512 >/dev/null 2>&1 < /dev/null &
    echo $! >"$(sink_pidfile "$port")"
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0; sleep 0.1; done
    echo "smtp-sink did not start on $port" >&2; exit 1
    ;;
  sink-stop)
    if [ -n "${2:-}" ]; then
      stop_sink_on "$2"
    else  # every sink this script started
      for pidfile in "$RUN"/bench-sink-*.pid; do
        [ -e "$pidfile" ] || continue
        port=${pidfile##*/bench-sink-}; stop_sink_on "${port%.pid}"
      done
    fi
    ;;
  sink-pid)
    cat "$(sink_pidfile "$2")"
    ;;
  postfix-start)
    port=$2 dkim=${3:-}
    # A minimal main.cf: Postfix's compiled-in defaults plus the peer set-up below.
    echo "compatibility_level = 3.7" >/etc/postfix/main.cf
    postconf -e "relayhost = [127.0.0.1]:$port" "inet_interfaces = loopback-only" "mydestination =" \
      "mynetworks = 127.0.0.0/8" "maillog_file = /var/log/postfix.log" "inet_protocols = ipv4" \
      "smtp_destination_concurrency_limit = 50" "default_destination_concurrency_limit = 50"
    if [ "$dkim" = dkim ]; then
      opendkim_start
      # The path as smtpd sees it from its chroot; a milter that fails must fail the run, not
      # let unsigned mail through.
      postconf -e "smtpd_milters = unix:/opendkim/opendkim.sock" "milter_default_action = tempfail"
    else
      opendkim_stop
    fi
    postfix status >/dev/null 2>&1 && postfix reload >/dev/null 2>&1 || postfix start >/dev/null 2>&1
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null && exit 0; sleep 0.1; done
    echo "postfix did not start" >&2; exit 1
    ;;
  postfix-stop)
    postfix stop >/dev/null 2>&1 || true
    opendkim_stop
    ;;
  *) echo "usage: peers.sh install|sink-start DIR PORT|sink-stop [PORT]|sink-pid PORT|postfix-start SINKPORT [dkim]|postfix-stop" >&2; exit 2 ;;
esac
