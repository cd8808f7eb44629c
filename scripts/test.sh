#!/usr/bin/env bash
# Runs every test tier (unit, integration against real MariaDB and Redis, real FUSE mounts),
# installing what they need first. Extra arguments go to `dotnet test` (e.g. --filter Model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-packages.sh fuse3 libsqlite3-0 mariadb-server redis-server bindfs git
# The Debian packages start their services where systemd runs; the tests start their own
# servers on free loopback ports and need none of them.
dotnet build TruckeeFs.sln -c Release --nologo -v quiet
log=$(mktemp)
status=0
dotnet test TruckeeFs.sln -c Release --no-build --nologo "$@" 2>&1 | tee "$log" || status=$?
# One plain summary line for tools that read the end of the output.
count() { grep -oE "$1: +[0-9]+" "$log" | awk '{ n += $2 } END { print n + 0 }'; }
passed=$(count Passed); failed=$(count Failed); skipped=$(count Skipped)
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
