#!/usr/bin/env bash
# Two mounts of one filesystem, as two hosts would run them: MariaDB and Redis started here on
# 127.0.0.1 (as in bench/production.sh), contents in a local store both mounts share, a cache
# directory each, kernel cache timeouts left at their default (60 s).
#
#   sudo bash bench/multihost.sh [--trials 500] [--files 2000] [--runs 5] [--bin DIR]
#
# 1. Visibility: the time from a close on A to the new size in stat on B, and from a create on
#    A to the name in B's (cached) listing: median, p90, p99, max (bench/visibility.py).
# 2. The cost of invalidation traffic: bench.py's small-file workload on A, --runs times each,
#    with A mounted alone, with B mounted and idle, and with B listing the tree in a loop (so
#    that B's kernel has caches for A's invalidations to drop). Medians of each metric.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
trials=500
files=2000
runs=5
bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --trials) trials=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
log() { echo "[multihost] $*" >&2; }

bash scripts/install-packages.sh mariadb-server redis-server fuse3
work=$(mktemp -d /var/tmp/truckeefs-multihost-bench.XXXXXX)
. bench/servers.sh
pids=()
watcher=""

cleanup() {
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null || true
  for m in "$work/a" "$work/b"; do
    awk -v m="$m" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_servers
  wait 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

start_servers
log "MariaDB on 127.0.0.1:$sql_port, Redis on 127.0.0.1:$redis_port"

if [ -z "$bin" ]; then
  log "publishing truckeefs (Release)"
  dotnet publish src/TruckeeFs.Cli -c Release -o "$work/bin" --nologo -v quiet >&2
  bin=$work/bin
fi

mount_one() { # NAME
  mkdir -p "$work/$1" "$work/cache-$1"
  "$bin/truckeefs" mount "$work/$1" --data-dir "$work/shared-data" --cache-dir "$work/cache-$1" \
    --sql-host "127.0.0.1:$sql_port" --sql-user truckeefs --redis-host "127.0.0.1:$redis_port" >> "$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do
    awk -v m="$work/$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo && return 0
    sleep 0.1
  done
  log "mount $1 failed:"; tail -n 20 "$work/$1.log" >&2; exit 1
}

small_files() { # LABEL
  for run in $(seq "$runs"); do
    python3 bench/bench.py small-files "$work/a/small-$1-$run" --files "$files" | sed "s/}\$/, \"setup\": \"$1\"}/"
  done >> "$work/small.jsonl"
}

mount_one a
log "small files on A, alone"
small_files alone
mount_one b
log "visibility A -> B ($trials trials)"
python3 bench/visibility.py "$work/a" "$work/b" --trials "$trials" | tee "$work/visibility.jsonl"
log "small files on A, B mounted and idle"
small_files b-idle
# Files vanish while ls walks (the workload unlinks them): its failures are expected.
( while true; do ls -lR "$work/b" > /dev/null 2>&1 || true; sleep 0.05; done ) &
watcher=$!
log "small files on A, B listing the tree in a loop"
small_files b-listing
kill "$watcher" 2>/dev/null || true; watcher=""

python3 - "$work/small.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
setups = list(dict.fromkeys(r["setup"] for r in rows))
metrics = list(dict.fromkeys(r["metric"] for r in rows))
print("%-14s" % "metric" + "".join("%16s" % s for s in setups) + "   (medians)")
for m in metrics:
    values = [statistics.median(r["value"] for r in rows if r["metric"] == m and r["setup"] == s) for s in setups]
    unit = next(r["unit"] for r in rows if r["metric"] == m)
    print("%-14s" % m + "".join("%16.0f" % v for v in values) + "   " + unit + "   vs alone: " +
          ", ".join("%s %+.1f%%" % (s, (v / values[0] - 1) * 100) for s, v in zip(setups[1:], values[1:])))
EOF
