#!/usr/bin/env bash
# What SQLite alone takes for the transaction a small-file unlink costs the embedded default,
# with no TruckeeFS in the way: Python's sqlite3 module (the same libsqlite3, statements
# prepared once, as the mount keeps them) replays, on a copy of a metadata database a mount
# made with --files small files, the statements the mount's unlink of a closed file runs (five
# locking reads, then the writes and COMMIT), with the mount's settings (WAL, synchronous=NORMAL,
# exclusive locking). Then the smallest write transaction there is: one DELETE and COMMIT.
# Prints the time and CPU per transaction; no embedded mount can unlink faster than the first
# allows, nor run any transaction per operation faster than the second.
#
#   sudo bash bench/sqlite-floor.sh [--files 4000]
set -euo pipefail
cd "$(dirname "$0")/.."
files=4000
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0
elif [ "${1:-}" = --files ] && [ $# = 2 ] && [ "$2" -gt 0 ] 2>/dev/null; then
  files=$2
elif [ $# -gt 0 ]; then
  echo "usage: bench/sqlite-floor.sh [--files 4000] (see --help)" >&2; exit 2
fi
bash scripts/install-packages.sh fuse3 libsqlite3-0
work=$(mktemp -d /var/tmp/truckeefs-sqlite-floor.XXXXXX)
# --one-file-system: never delete through a mount that failed to go away.
trap 'fusermount3 -u "$work/mnt" 2>/dev/null || true; rm -rf --one-file-system "$work"' EXIT

echo "[sqlite-floor] publishing truckeefs and making $files small files on the embedded default" >&2
dotnet publish src/TruckeeFs.Cli -c Release -o "$work/bin" --nologo -v quiet >&2
mkdir -p "$work/mnt"
"$work/bin/truckeefs" mount "$work/mnt" --data-dir "$work/data" --cache-dir "$work/cache" > "$work/mount.log" 2>&1 &
mount_pid=$!
for _ in $(seq 300); do mountpoint -q "$work/mnt" && break; sleep 0.1; done
mountpoint -q "$work/mnt" || { tail -n 20 "$work/mount.log" >&2; exit 1; }
python3 - "$work/mnt/d" "$files" <<'PY'
import os, sys
os.makedirs(sys.argv[1])
payload = os.urandom(1024)
for i in range(int(sys.argv[2])):
    fd = os.open(os.path.join(sys.argv[1], f"f{i:05d}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, payload)
    os.close(fd)
PY
fusermount3 -u "$work/mnt"
wait "$mount_pid"

python3 - "$work/data/metadata.db" "$work/floor.db" <<'PY'
import os, shutil, sqlite3, sys, time

def fresh_copy():
    shutil.copy(sys.argv[1], sys.argv[2])
    for suffix in ("-wal", "-shm"):
        if os.path.exists(sys.argv[2] + suffix): os.remove(sys.argv[2] + suffix)
    db = sqlite3.connect(sys.argv[2], isolation_level=None, cached_statements=256)
    for pragma in ("locking_mode=EXCLUSIVE", "journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=32768"):
        db.execute("PRAGMA " + pragma)
    return db

def replay(label, transaction):
    db = fresh_copy()
    directory = db.execute("SELECT inode FROM dirents WHERE parent = 1 AND name = CAST('d' AS BLOB)").fetchone()[0]
    rows = db.execute("SELECT id, name, inode FROM dirents WHERE parent = ?", (directory,)).fetchall()
    start, cpu = time.perf_counter(), time.process_time()
    for number, row in enumerate(rows):
        db.execute("BEGIN IMMEDIATE")
        transaction(db, directory, number, *row)
        db.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.close()
    print(f"{label:<52} {elapsed / len(rows) * 1e6:5.0f} us per transaction, CPU {cpu / len(rows) * 1e6:4.0f} us")

columns = "id, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version, allocated"
named = "(SELECT inode FROM dirents WHERE parent = ? AND name = ?)"

def unlink(db, directory, number, entry, name, inode):
    # SqlMetaStore.Unlink of a closed file that no other session has open.
    db.execute(f"SELECT {columns} FROM inodes WHERE id = ?", (directory,)).fetchall()
    db.execute("SELECT id, parent, name, inode FROM dirents WHERE parent = ? AND name = ?", (directory, name)).fetchall()
    db.execute(f"SELECT {columns} FROM inodes WHERE id = {named}", (directory, name)).fetchall()
    db.execute(f"SELECT session FROM opens WHERE inode = {named} AND session <> ? LIMIT 1", (directory, name, 0)).fetchall()
    blocks = db.execute(f"SELECT idx, cap, length FROM blocks WHERE inode = {named} ORDER BY idx", (directory, name)).fetchall()
    now = 2_000_000_000_000_000_000 + number
    db.execute("DELETE FROM dirents WHERE id = ?", (entry,))
    db.execute("UPDATE inodes SET mtime = ?, ctime = ? WHERE id = ?", (now, now, directory))
    db.execute("DELETE FROM opens WHERE inode = ?", (inode,))
    db.execute("DELETE FROM blocks WHERE inode = ?", (inode,))
    db.execute("DELETE FROM xattrs WHERE inode = ?", (inode,))
    for _, cap, _ in blocks:
        db.execute("UPDATE contents SET refs = refs - 1 WHERE cap = ?", (cap,))
        db.execute("SELECT cap FROM contents WHERE cap IN (?) AND refs <= 0", (cap,)).fetchall()
        db.execute("DELETE FROM contents WHERE cap IN (?) AND refs <= 0", (cap,))
    db.execute("DELETE FROM inodes WHERE id = ?", (inode,))

replay("unlink of a small file (the mount's statements)", unlink)
replay("smallest write transaction (one DELETE)", lambda db, directory, number, entry, name, inode:
       db.execute("DELETE FROM dirents WHERE id = ?", (entry,)))
PY
