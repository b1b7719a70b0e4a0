#!/usr/bin/env bash
# Starts a throw-away ClickHouse server for the service tests and prints its HTTP URL.
#
#   tests/services/clickhouse.sh start   # install (apt) if missing, start if not running, print URL
#   tests/services/clickhouse.sh url     # print the URL
#   tests/services/clickhouse.sh stop    # stop the server started by `start`
#
# Idempotent: `start` on a running server only prints the URL. The server runs as the current
# user with its data and config in $ODS_CLICKHOUSE_DIR (default /tmp/ods-clickhouse), on
# non-default ports (HTTP $ODS_CLICKHOUSE_HTTP_PORT, default 18123) so it never collides with a
# system server. Debian's clickhouse-server (18.16) is the only one in apt; the store also runs on
# current releases (see crates/ods-clickhouse).
set -euo pipefail

DIR="${ODS_CLICKHOUSE_DIR:-/tmp/ods-clickhouse}"
HTTP_PORT="${ODS_CLICKHOUSE_HTTP_PORT:-18123}"
TCP_PORT="${ODS_CLICKHOUSE_TCP_PORT:-19000}"
URL="http://127.0.0.1:${HTTP_PORT}"

server_bin() {
  command -v clickhouse-server 2>/dev/null || { [ -x /usr/sbin/clickhouse-server ] && echo /usr/sbin/clickhouse-server; } || true
}

alive() {
  [ "$(curl -s --max-time 2 "${URL}/?query=SELECT%201" 2>/dev/null)" = "1" ]
}

install() {
  if [ -z "$(server_bin)" ]; then
    echo "installing clickhouse-server (apt)" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >&2
  fi
}

write_config() {
  mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/log" "$DIR/format_schemas"
  cat > "$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/log/server.log</log>
        <errorlog>$DIR/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$HTTP_PORT</http_port>
    <tcp_port>$TCP_PORT</tcp_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>104857600</uncompressed_cache_size>
    <mark_cache_size>104857600</mark_cache_size>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
  cat > "$DIR/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
XML
}

start() {
  if alive; then
    echo "$URL"
    return
  fi
  install
  local bin
  bin="$(server_bin)"
  [ -n "$bin" ] || { echo "clickhouse-server not found after install" >&2; exit 1; }
  write_config
  echo "starting clickhouse-server ($bin) in $DIR on port $HTTP_PORT" >&2
  nohup "$bin" --config-file="$DIR/config.xml" > "$DIR/log/stdout.log" 2>&1 &
  echo $! > "$DIR/server.pid"
  for _ in $(seq 1 120); do
    if alive; then
      echo "$URL"
      return
    fi
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
      echo "clickhouse-server exited; its log:" >&2
      tail -n 40 "$DIR/log/stdout.log" "$DIR/log/server.err.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
  echo "clickhouse-server did not answer SELECT 1 on $URL within 60 s" >&2
  exit 1
}

stop() {
  if [ -f "$DIR/server.pid" ]; then
    local pid
    pid="$(cat "$DIR/server.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$DIR/server.pid"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
