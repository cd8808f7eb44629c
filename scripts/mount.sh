#!/usr/bin/env bash
# Builds truckeefs and mounts the embedded default (no servers needed) in the foreground.
# Usage: scripts/mount.sh [MOUNTPOINT] [truckeefs mount options...]   (default /mnt/truckeefs)
# Stop it with: fusermount3 -u MOUNTPOINT   (or Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
mountpoint=${1:-/mnt/truckeefs}
shift || true
bash scripts/install-packages.sh fuse3 libsqlite3-0
dotnet publish src/TruckeeFs.Cli -c Release -o artifacts/truckeefs --nologo -v quiet
mkdir -p "$mountpoint"
exec artifacts/truckeefs/truckeefs mount "$mountpoint" "$@"
