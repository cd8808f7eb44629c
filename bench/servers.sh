# Sourced by the benchmarks that need production servers: a MariaDB and a Redis on 127.0.0.1,
# on free ports, with their data under $work. Sets sql_port and redis_port, and exports the
# SQL password through the environment (ps would show it on a command line) and the servers'
# process ids (BENCH_SERVER_PIDS, for bench/run.sh's CPU figures).
#   start_servers   starts both, waits until they answer, creates database and user truckeefs
#   stop_servers    stops both (call it from the script's cleanup)
#   servers_until_exit NAME  for a script with nothing else to clean up: installs the packages,
#                   makes $work (/var/tmp/truckeefs-NAME.XXXXXX), starts both, and at exit
#                   stops them and removes $work

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_servers() {
  sql_port=$(free_port)
  redis_port=$(free_port)
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
  export TRUCKEEFS_SQL_PASS=bench
  # bench/run.sh reports their CPU time per unit of work beside the mount's.
  BENCH_SERVER_PIDS="mariadbd=$(cat "$work/mariadb.pid") redis-server=$(cat "$work/redis.pid")"
  export BENCH_SERVER_PIDS
}

stop_servers() {
  for pid_file in "$work/mariadb.pid" "$work/redis.pid"; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
}

servers_until_exit() {
  bash scripts/install-packages.sh mariadb-server redis-server
  work=$(mktemp -d "/var/tmp/truckeefs-$1.XXXXXX")
  # --one-file-system: never delete through a mount that failed to go away.
  trap 'stop_servers; wait 2>/dev/null || true; rm -rf --one-file-system "$work"' EXIT
  start_servers
}
