#!/usr/bin/env bash
# Small-file creates and unlinks through the engine alone, with no FUSE, kernel or client
# process in the way: each file is created, written (1 KiB), closed and released, then each is
# unlinked, by calls on the engine one after another, as a mount makes them for bench/run.sh's
# small_create and small_unlink. What this reaches is a ceiling for a mount's rates on the same
# backends and machine; the gap to a mount's rates is what FUSE costs. Runs the embedded
# default (SQLite, local contents), then MariaDB + Redis (local contents) on servers started
# here as bench/production.sh starts them (durable commits). Prints files/s and CPU µs per file
# of the engine's process, mariadbd and redis-server: medians of the rounds after the warm-up.
#
#   sudo bash bench/engine.sh [--files 1000] [--rounds 6] [--warmup-rounds 4]
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
# The embedded default's metadata needs SQLite; the servers' packages come with them below.
bash scripts/install-packages.sh libsqlite3-0
. bench/servers.sh
servers_until_exit engine

echo "[engine] building the benchmark (Release)" >&2
dotnet build bench/Engine -c Release --nologo -v quiet >&2
mkdir -p bench/results
out=bench/results/engine-$(date +%Y%m%d-%H%M%S).json
engine() { dotnet bench/Engine/bin/Release/net10.0/Engine.dll --out "$out" "$@"; }
# The servers sit idle while the embedded default runs: their CPU is left out of its figures.
BENCH_SERVER_PIDS="" engine --label embedded --data-dir "$work/embedded" --cache-dir "$work/embedded-cache" "$@"
engine --label mariadb+redis --data-dir "$work/production" --cache-dir "$work/production-cache" \
  --sql-host "127.0.0.1:$sql_port" --sql-user truckeefs --redis-host "127.0.0.1:$redis_port" "$@"
echo "[engine] results in $out" >&2
