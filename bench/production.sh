#!/usr/bin/env bash
# The benchmark of bench/run.sh with TruckeeFS on production metadata and coordination: a real
# MariaDB and a real Redis, started here on 127.0.0.1 (free ports, temporary data) and stopped
# afterwards. Contents stay in the local store (no Tahoe gateway is installable here), so the
# numbers isolate the cost of the servers. All arguments go to bench/run.sh.
# Usage: sudo bash bench/production.sh [--runs N] [--targets plain,bindfs,truckeefs] ...
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/servers.sh
servers_until_exit production-bench
echo "[production] MariaDB on 127.0.0.1:$sql_port, Redis on 127.0.0.1:$redis_port" >&2

bash bench/run.sh "$@" --truckeefs-args "--sql-host 127.0.0.1:$sql_port --sql-user truckeefs --redis-host 127.0.0.1:$redis_port"
