#!/usr/bin/env bash
# The data-path benchmark: the Tahoe test gateway in-process on loopback with a fixed latency
# per request, a real truckeefs mount on it, and the same bytes moved by raw HTTP.
#
#   bench/datapath.sh [--runs 3] [--size-mib 256] [--big-mib 2048 (0: skip)] [--latency-ms 20]
#                     [--block-size-mib 4] [--max-connections 10] [--workdir /var/tmp]
#
# Per run (medians are reported; a first run, not kept, warms the gateway and the benchmark
# itself up): cold sequential write of --size-mib through the mount (1 MiB
# writes, one fsync before the clock stops), then raw HTTP PUT of the same blocks
# (max_connections at once); cold sequential read after a remount with the cached blocks
# deleted and the page cache dropped, then raw HTTP GET of those blocks; warm read (blocks
# cached on disk, page cache dropped); the embedded default (SQLite + local store) writing and
# reading the same file. Each ratio pairs the two figures of one run and is reported as the
# median over runs. Beside each figure, the CPU time it cost per MiB in the mount process and
# in the benchmark's own process (the gateway, and the reader, writer or raw HTTP client): on
# two cores they share the CPU. Then once: peak RSS (VmHWM) of the mount process writing and
# reading back a --big-mib file on Tahoe.
# Needs root for /proc/sys/vm/drop_caches. Results: a table on stdout, JSON in bench/results/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
bash "$repo/scripts/install-packages.sh" fuse3 libsqlite3-0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The executable users run: published (precompiled), as scripts/mount.sh does.
echo "[datapath] publishing truckeefs and building the benchmark (Release)" >&2
dotnet publish "$repo/src/TruckeeFs.Cli" -c Release -o "$work/truckeefs" --nologo -v quiet >&2
dotnet build "$repo/bench/DataPath" -c Release --nologo -v quiet >&2
mkdir -p "$repo/bench/results"
dotnet "$repo/bench/DataPath/bin/Release/net10.0/DataPath.dll" \
  --truckeefs "$work/truckeefs/truckeefs" \
  --out "$repo/bench/results/datapath-$(date +%Y%m%d-%H%M%S).json" "$@"
