#!/usr/bin/env bash
# What MariaDB alone takes for the transactions a small-file create costs TruckeeFS, with no
# TruckeeFS in the way: the mariadb client replays each transaction --count times, batched as
# the mount batches it (a create in a directory the mount knows and a new file's first commit:
# writes and COMMIT in one round trip, behind a guard; the ways that read first: reads and row
# locks in one round trip, writes and COMMIT in the next), over TCP to a server started here
# as bench/production.sh starts it (durable commits). Prints the time per transaction; no
# TruckeeFS client can create files faster than the create transaction allows, whatever it does.
#
#   sudo bash bench/mariadb-floor.sh [--count 500]
set -euo pipefail
cd "$(dirname "$0")/.."
count=500
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
# In BODY, NAME_ becomes the transaction's own file name (PREFIX and its number), PREV_ and NOW_
# the directory's ctime before and after it (the root's ctime starts at 1).
replay() { # LABEL PREFIX BODY
  local script=$work/${2}-$(echo "$1" | tr -c 'a-z' '_').sql
  python3 - "$count" "$2" "$3" > "$script" <<'EOF'
import sys
count, prefix, body = int(sys.argv[1]), sys.argv[2], sys.argv[3]
print("DELIMITER //")
print("UPDATE inodes SET ctime = 1 WHERE id = 1//")
for i in range(count):
    print(body.replace("NAME_", "%s%06d" % (prefix, i)).replace("PREV_", str(i + 1)).replace("NOW_", str(i + 2)))
EOF
  local start end
  start=$(date +%s%N)
  client < "$script"
  end=$(date +%s%N)
  printf '%-45s %6d us per transaction\n' "$1" $(( (end - start) / count / 1000 ))
}

columns="id, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version, allocated"
named="(SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_')"
# What the mount sends after a guarding UPDATE: an error, which stops the batch, unless it changed one row.
guard="SET @guard_held = (SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE ROW_COUNT() <> 1);
SELECT @guard_held;"
replay "round trip (SELECT 1)" one "SELECT 1//"
replay "create, directory known (1 round trip)" known "BEGIN;
UPDATE inodes SET nlink = nlink + 0, mtime = NOW_, ctime = NOW_ WHERE id = 1 AND ctime = PREV_;
$guard
INSERT INTO inodes (mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version) VALUES (33188, 0, 0, 1, 0, NOW_, NOW_, NOW_, 0, NULL, 0);
INSERT INTO dirents (parent, name, inode) VALUES (1, _binary 'NAME_', LAST_INSERT_ID());
INSERT INTO opens (inode, session) SELECT inode, 1 FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
COMMIT//"
replay "first commit of a new file (1 round trip)" known "BEGIN;
UPDATE inodes SET size = 1024, mtime = 3, ctime = 3, version = 1, allocated = 1024 WHERE id = $named AND version = 0;
$guard
INSERT INTO contents (cap, refs, length) VALUES ('LOCAL:NAME_', 1, 1024) ON DUPLICATE KEY UPDATE refs = refs + 1;
INSERT INTO blocks (inode, idx, cap, length) SELECT inode, 0, 'LOCAL:NAME_', 1024 FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
SELECT $columns FROM inodes WHERE id = $named;
COMMIT//"
replay "create that reads first (2 round trips)" read "BEGIN;
SELECT $columns FROM inodes WHERE id = 1 FOR UPDATE;
SELECT id, parent, name, inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_' FOR UPDATE//
INSERT INTO inodes (mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version) VALUES (33188, 0, 0, 1, 0, 1, 1, 1, 0, NULL, 0);
INSERT INTO dirents (parent, name, inode) VALUES (1, _binary 'NAME_', LAST_INSERT_ID());
UPDATE inodes SET nlink = nlink + 0, mtime = 2, ctime = 2 WHERE id = 1;
INSERT INTO opens (inode, session) SELECT inode, 1 FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
SELECT inode FROM dirents WHERE parent = 1 AND name = _binary 'NAME_';
COMMIT//"
replay "commit of a new version (2 round trips)" known "BEGIN;
SELECT $columns FROM inodes WHERE id = $named FOR UPDATE;
SELECT idx, cap, length FROM blocks WHERE inode = $named ORDER BY idx FOR UPDATE//
INSERT INTO contents (cap, refs, length) VALUES ('LOCAL:NAME_.2', 1, 1024) ON DUPLICATE KEY UPDATE refs = refs + 1;
UPDATE blocks SET cap = 'LOCAL:NAME_.2' WHERE inode = $named AND idx = 0;
UPDATE contents SET refs = refs - 1 WHERE cap = 'LOCAL:NAME_';
UPDATE inodes SET size = 1024, mtime = 4, ctime = 4, version = 2, allocated = 1024 WHERE id = $named;
COMMIT//"
