#!/usr/bin/env bash
# Benchmarks TruckeeFS against a plain local directory and a bindfs passthrough (the cost of FUSE
# alone), with the same workloads, and prints medians and ratios.
#
#   bench/run.sh [--runs N] [--targets plain,bindfs,truckeefs] [--truckeefs-args "ARGS"]
#                [--size-mib 256] [--files 2000] [--rand-reads 5000] [--workdir DIR] [--bin DIR]
#
# --truckeefs-args  extra arguments for "truckeefs mount" (another backend, a block size...)
# --bin             use an already published truckeefs instead of publishing src/TruckeeFs.Cli
# --workdir         where the targets live (default /var/tmp); all targets share its disk
#
# Workloads, each timed separately and run --runs times: sequential write of --size-mib (fsync
# before the clock stops), sequential read of it and --rand-reads random 4 KiB preads, both after
# dropping the page cache and remounting FUSE targets; create, stat, read, readdir (20 listings)
# and unlink of --files 1 KiB files; untar of /usr/include and rm -rf of the result.
# Results: a table on stdout and JSON in bench/results/ (not committed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=5
targets=plain,bindfs,truckeefs
truckeefs_args=""
size_mib=256
files=2000
rand_reads=5000
workdir=/var/tmp
bin=""

while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --truckeefs-args) truckeefs_args=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --rand-reads) rand_reads=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

IFS=, read -r -a target_list <<< "$targets"
for t in "${target_list[@]}"; do
  case $t in plain|bindfs|truckeefs) ;; *) echo "unknown target: $t" >&2; exit 2 ;; esac
done
wants() { [[ ",$targets," == *",$1,"* ]]; }

log() { echo "[bench] $*" >&2; }

# A fresh machine may lack the FUSE tools and the SQLite library.
bash "$repo/scripts/install-packages.sh" fuse3 libsqlite3-0 bindfs

work=$(mktemp -d "$workdir/truckeefs-bench.XXXXXX")
samples=$work/samples.jsonl
truckeefs_pid=""
truckeefs_rss_kib=0
mounted=()

is_mounted() {
  # Field 5 of mountinfo is the mount point (spaces escaped as \040; ours have none).
  awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

cleanup() {
  local status=$?
  for m in "${mounted[@]}"; do
    if is_mounted "$m"; then fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; fi
  done
  if [ -n "$truckeefs_pid" ] && kill -0 "$truckeefs_pid" 2>/dev/null; then
    kill "$truckeefs_pid" 2>/dev/null || true
    sleep 2
    kill -9 "$truckeefs_pid" 2>/dev/null || true
  fi
  # --one-file-system: never delete through a mount that failed to go away.
  rm -rf --one-file-system "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then
    echo 3 > /proc/sys/vm/drop_caches
  else
    caches_dropped=false
  fi
}
caches_dropped=true

wait_mounted() { # MOUNTPOINT PID LOG
  for _ in $(seq 300); do
    is_mounted "$1" && return 0
    if [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null; then
      log "truckeefs exited before mounting $1:"; tail -n 40 "$3" >&2; return 1
    fi
    sleep 0.1
  done
  log "$1 not mounted after 30 s"; [ -n "$3" ] && tail -n 40 "$3" >&2
  return 1
}

record_rss() {
  local hwm
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$truckeefs_pid/status" 2>/dev/null || echo 0)
  if [ "${hwm:-0}" -gt "$truckeefs_rss_kib" ]; then truckeefs_rss_kib=$hwm; fi
}

mount_target() { # TARGET
  case $1 in
    plain) ;;
    bindfs)
      bindfs "$work/bindfs-backing" "$work/bindfs"
      wait_mounted "$work/bindfs" "" "" ;;
    truckeefs)
      # shellcheck disable=SC2086 # --truckeefs-args is split into words on purpose.
      "$bin/truckeefs" mount "$work/truckeefs" --data-dir "$work/truckeefs-data" --cache-dir "$work/truckeefs-cache" \
        $truckeefs_args >> "$work/truckeefs.log" 2>&1 &
      truckeefs_pid=$!
      wait_mounted "$work/truckeefs" "$truckeefs_pid" "$work/truckeefs.log" ;;
  esac
}

unmount_target() { # TARGET
  case $1 in
    plain) ;;
    bindfs) fusermount3 -u "$work/bindfs" ;;
    truckeefs)
      record_rss
      fusermount3 -u "$work/truckeefs"
      local code=0
      wait "$truckeefs_pid" || code=$?
      truckeefs_pid=""
      [ "$code" = 0 ] || { log "truckeefs exited with $code after unmount"; tail -n 40 "$work/truckeefs.log" >&2; return 1; } ;;
  esac
}

# Empties the page cache and, for FUSE targets, restarts the daemon so that no in-process cache
# serves the next read either.
cold() { # TARGET
  unmount_target "$1"
  drop_caches
  mount_target "$1"
}

measure() { # TARGET RUN COMMAND...
  local target=$1 run=$2 watched=""; shift 2
  # The processes whose CPU time per unit of work bench.py reports beside each figure.
  case $target in
    bindfs) watched="bindfs=$(pgrep -n -f "^bindfs $work/bindfs-backing $work/bindfs\$" || true)" ;;
    truckeefs) watched="truckeefs=$truckeefs_pid ${BENCH_SERVER_PIDS:-}" ;;
  esac
  BENCH_CPU_PIDS=$watched python3 "$repo/bench/bench.py" "$@" | while read -r line; do
    echo "${line%\}}, \"target\": \"$target\", \"run\": $run}" >> "$samples"
    log "$target run $run: $line"
  done
  [ "${PIPESTATUS[0]}" = 0 ]
}

if wants truckeefs && [ -z "$bin" ]; then
  log "publishing truckeefs (Release)"
  dotnet publish "$repo/src/TruckeeFs.Cli" -c Release -o "$work/bin" --nologo -v quiet >&2
  bin=$work/bin
fi

log "preparing ${size_mib} MiB of random data and a tarball of /usr/include in $work"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/source.bin"
tar -C /usr -cf "$work/include.tar" include

mkdir -p "$work/plain" "$work/bindfs" "$work/bindfs-backing" "$work/truckeefs" "$work/truckeefs-data" "$work/truckeefs-cache"
for t in "${target_list[@]}"; do
  if [ "$t" != plain ]; then mounted+=("$work/$t"); fi
  mount_target "$t"
done

for run in $(seq "$runs"); do
  for t in "${target_list[@]}"; do
    dir=$work/$t
    measure "$t" "$run" seq-write "$dir/seq.bin" "$work/source.bin"
    cold "$t"
    measure "$t" "$run" seq-read "$dir/seq.bin"
    cold "$t"
    measure "$t" "$run" rand-read "$dir/seq.bin" --count "$rand_reads" --seed "$run"
    rm -f "$dir/seq.bin"
    measure "$t" "$run" small-files "$dir/small" --files "$files"
    mkdir "$dir/untar"
    measure "$t" "$run" timed untar tar -C "$dir/untar" -xf "$work/include.tar"
    measure "$t" "$run" timed rm_rf rm -rf "$dir/untar"
  done
done

for t in "${target_list[@]}"; do unmount_target "$t"; done

mkdir -p "$repo/bench/results"
out=$repo/bench/results/$(date +%Y%m%d-%H%M%S).json
settings=$(printf '{"targets": "%s", "truckeefs_args": "%s", "size_mib": %s, "files": %s, "rand_reads": %s, "workdir": "%s", "caches_dropped": %s, "commit": "%s"}' \
  "$targets" "$truckeefs_args" "$size_mib" "$files" "$rand_reads" "$workdir" "$caches_dropped" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)")
rss=""
wants truckeefs && rss=$truckeefs_rss_kib
python3 "$repo/bench/bench.py" report "$samples" --out "$out" --runs "$runs" --rss-kib "$rss" --settings "$settings"
[ "$caches_dropped" = true ] || log "WARNING: /proc/sys/vm/drop_caches is not writable (not root?): reads were not cold"
