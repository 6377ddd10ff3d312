#!/usr/bin/env bash
# Apache Kafka, KRaft, one node on 127.0.0.1:9092 (controller 9093).
# Jars come from Maven Central through mvn into .mailstream/kafka/<version>/lib, once.
source "$(dirname "$0")/lib.sh"

KHOME="$STATE/kafka"
LIB="$KHOME/$KAFKA_VERSION/lib"
DATA="$KHOME/data"
CONF="$KHOME/server.properties"
LOG="$LOGS/kafka.log"

prepare() {
  command -v java >/dev/null || die "Java 17+ is required for Kafka (install Debian's openjdk-17-jre-headless)"
  if [ ! -f "$LIB/.complete" ]; then
    command -v mvn >/dev/null || die "Maven (mvn) is required to fetch Kafka's jars"
    say "fetching Kafka $KAFKA_VERSION jars with mvn"
    mkdir -p "$LIB"
    sed "s/@KAFKA_VERSION@/$KAFKA_VERSION/" "$ROOT/deploy/local/kafka/pom.xml.in" >"$KHOME/$KAFKA_VERSION/pom.xml"
    mvn -B -q -f "$KHOME/$KAFKA_VERSION/pom.xml" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIB"
    touch "$LIB/.complete"
  fi
}

start() {
  prepare
  if is_running kafka; then return 0; fi
  sed "s#@DATA_DIR@#$DATA#" "$ROOT/deploy/local/kafka/server.properties.in" >"$CONF"
  local logopt="-Dlog4j2.configurationFile=$ROOT/deploy/local/kafka/log4j2.properties"
  if [ ! -f "$DATA/meta.properties" ]; then
    mkdir -p "$DATA"
    local cluster_id
    cluster_id=$(java -cp "$LIB/*" $logopt kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    java -Xmx256m $logopt -cp "$LIB/*" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$CONF" --ignore-formatted >>"$LOG" 2>&1
  fi
  [ -f "$LOG" ] && mv "$LOG" "$LOG.previous"
  start_bg kafka java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" $logopt -cp "$LIB/*" kafka.Kafka "$CONF"
  wait_ready
}

# Ready = the broker logged "Kafka Server started" (it is unfenced and serving) and a
# Kafka-level metadata request from our own client succeeds.
wait_ready() {
  local pid deadline=$((SECONDS + 120))
  pid=$(pid_of kafka)
  until grep -q "Kafka Server started" "$LOG" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { say "kafka exited during start:"; tail -n 40 "$LOG" >&2; return 1; }
    (( SECONDS < deadline )) || { say "kafka not started after 120s:"; tail -n 40 "$LOG" >&2; return 1; }
    sleep 0.3
  done
  "$PY" - <<'PY'
import asyncio
from aiokafka.admin import AIOKafkaAdminClient

async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9092", request_timeout_ms=5000)
    for attempt in range(60):
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            assert cluster["brokers"], "no broker in the cluster metadata"
            return
        except Exception:
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise SystemExit("kafka: metadata request failed for 30s")

asyncio.run(main())
PY
}

stop() { stop_pid kafka 40; }

case "${1:-}" in
  prepare) prepare ;;
  start) start ;;
  stop) stop ;;
  reset) stop; rm -rf "$DATA" ;;
  *) die "usage: kafka.sh prepare|start|stop|reset" ;;
esac
