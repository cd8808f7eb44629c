#!/usr/bin/env bash
# What MariaDB alone takes for the transactions a small-file create costs TruckeeFS, with no
# TruckeeFS in the way: the mariadb client replays each transaction --count times, as the mount
# batches it (reads and row locks in one round trip, writes and COMMIT in the next), over TCP
# to a server started here as bench/production.sh starts it (durable commits). Prints the
# time per transaction; no TruckeeFS client can create files faster than the create
# transaction allows, whatever it does.
#
#   sudo bash bench/mariadb-floor.sh [--count 500]
set -euo pipefail
cd "$(dirname "$0")/.."
count=500
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
. bench/servers.sh
servers_until_exit mariadb-floor

# The schema as TruckeeFS creates it: one mount, started and stopped, leaves it behind.
publish=$work/bin
dotnet publish src/TruckeeFs.Cli -c Release -o "$publish" --nologo -v quiet >&2
mkdir -p "$work/mnt"
"$publish/truckeefs" mount "$work/mnt" --data-dir "$work/data" --sql-host "127.0.0.1:$sql_port" --sql-user truckeefs \
  --redis-host "127.0.0.1:$redis_port" > "$work/mount.log" 2>&1 &
mount_pid=$!
for _ in $(seq 300); do mountpoint -q "$work/mnt" && break; sleep 0.1; done
mountpoint -q "$work/mnt" || { tail -n 20 "$work/mount.log" >&2; exit 1; }
fusermount3 -u "$work/mnt"
wait "$mount_pid"

client() { MYSQL_PWD=$TRUCKEEFS_SQL_PASS mariadb -h 127.0.0.1 -P "$sql_port" -u truckeefs truckeefs > /dev/null; }

# One script per transaction kind; "//" ends each batch (one round trip, as the mount sends it).
replay() { # NAME BODY (NAME_ is replaced by a name of its own per transaction)
  local script=$work/$1.sql
  python3 - "$count" "$2" > "$script" <<'EOF'
import sys
count, body = int(sys.argv[1]), sys.argv[2]
print("DELIMITER //")
for i in range(count):
    print(body.replace("NAME_", "n%06d" % i))
EOF
  local start end
  start=$(date +%s%N)
  client < "$script"
  end=$(date +%s%N)
  printf '%-40s %6d us per transaction\n' "$1" $(( (end - start) / count / 1000 ))
}

columns="id, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version, allocated"
replay "round trip (SELECT 1)" "SELECT 1//"
replay "create (2 round trips, durable commit)" "BEGIN;
SELECT $columns FROM inodes WHERE id = 1 FOR UPDATE;
SELECT id, parent, name, inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_' FOR UPDATE//
INSERT INTO inodes (mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version) VALUES (33188, 0, 0, 1, 0, 1, 1, 1, 0, NULL, 0);
INSERT INTO dirents (parent, name, inode) VALUES (1, _binary 'NAME_', LAST_INSERT_ID());
UPDATE inodes SET nlink = nlink + 0, mtime = 2, ctime = 2 WHERE id = 1;
INSERT INTO opens (inode, session) SELECT inode, 1 FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
COMMIT//"
replay "content commit (2 round trips, durable)" "BEGIN;
SELECT $columns FROM inodes WHERE id = (SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_') FOR UPDATE;
SELECT idx, cap, length FROM blocks WHERE inode = (SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_') ORDER BY idx FOR UPDATE//
INSERT INTO contents (cap, refs, length) VALUES ('LOCAL:NAME_', 1, 1024) ON DUPLICATE KEY UPDATE refs = refs + 1;
INSERT INTO blocks (inode, idx, cap, length) SELECT inode, 0, 'LOCAL:NAME_', 1024 FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
UPDATE inodes SET size = 1024, mtime = 3, ctime = 3, version = 1, allocated = 1024 WHERE id = (SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_');
COMMIT//"
