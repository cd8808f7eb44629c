#!/usr/bin/env bash
# The benchmark of bench/run.sh with TruckeeFS on production metadata and coordination: a real
# MariaDB and a real Redis, started here on 127.0.0.1 (free ports, temporary data) and stopped
# afterwards. Contents stay in the local store (no Tahoe gateway is installable here), so the
# numbers isolate the cost of the servers. All arguments go to bench/run.sh.
# Usage: sudo bash bench/production.sh [--runs N] [--targets plain,bindfs,truckeefs] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-packages.sh mariadb-server redis-server
work=$(mktemp -d /var/tmp/truckeefs-production-bench.XXXXXX)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sql_port=$(free_port)
redis_port=$(free_port)

cleanup() {
  for pid_file in "$work/mariadb.pid" "$work/redis.pid"; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mariadb-install-db --no-defaults --datadir="$work/db" --auth-root-authentication-method=normal --skip-test-db --user=root > "$work/install.log" 2>&1
# Durable commits (innodb_flush_log_at_trx_commit=1), as a production server should run.
mariadbd --no-defaults --datadir="$work/db" --socket="$work/mysqld.sock" --pid-file="$work/mariadb.pid" \
  --port="$sql_port" --bind-address=127.0.0.1 --skip-name-resolve --user=root \
  --innodb-flush-log-at-trx-commit=1 --character-set-server=utf8mb4 > "$work/mariadb.log" 2>&1 &
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --pidfile "$work/redis.pid" > "$work/redis.log" 2>&1 &

for _ in $(seq 1 100); do
  mariadb-admin --socket="$work/mysqld.sock" -uroot ping > /dev/null 2>&1 && redis-cli -p "$redis_port" ping > /dev/null 2>&1 && break
  sleep 0.2
done
mariadb --socket="$work/mysqld.sock" -uroot -e \
  "CREATE DATABASE truckeefs; CREATE USER 'truckeefs'@'127.0.0.1' IDENTIFIED BY 'bench'; GRANT ALL ON truckeefs.* TO 'truckeefs'@'127.0.0.1';"
echo "[production] MariaDB on 127.0.0.1:$sql_port, Redis on 127.0.0.1:$redis_port" >&2

# The password goes through the environment, not the command line (ps would show it).
export TRUCKEEFS_SQL_PASS=bench
bash bench/run.sh "$@" --truckeefs-args "--sql-host 127.0.0.1:$sql_port --sql-user truckeefs --redis-host 127.0.0.1:$redis_port"
