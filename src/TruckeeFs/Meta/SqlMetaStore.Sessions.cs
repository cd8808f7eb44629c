using System.Data.Common;
using System.Text;
using Dapper;

namespace TruckeeFs.Meta;

public sealed partial class SqlMetaStore
{
    private const string LockColumns = "id, session, owner, pid, flock, is_write AS IsWrite, first_byte AS FirstByte, last_byte AS LastByte";

    public long OpenSession(SessionInfo session)
    {
        long id = 0;
        Write((c, t) =>
        {
            id = c.ExecuteScalar<long>(
                $"INSERT INTO sessions (host, pid, mountpoint, started, heartbeat, liveness) VALUES (@Host, @Pid, @mountpoint, @Started, @Started, @Liveness); " +
                $"SELECT {_dialect.LastInsertId}",
                new { session.Host, session.Pid, mountpoint = Encoding.UTF8.GetBytes(session.Mountpoint), session.Started, session.Liveness }, t);
            return 0;
        });
        return id;
    }

    public bool Heartbeat(long session, long now) =>
        WriteCount((c, t) => c.Execute(CommitWith(t, "UPDATE sessions SET heartbeat = @now WHERE id = @session"), new { session, now }, t)) > 0;

    public IReadOnlyList<SessionRecord> Sessions() => Read(c =>
        c.Query<SessionRow>("SELECT id, host, pid, mountpoint, started, heartbeat, liveness FROM sessions ORDER BY id")
            .Select(r => new SessionRecord(r.Id, r.Host, r.Pid, Encoding.UTF8.GetString(r.Mountpoint), r.Started, r.Heartbeat, r.Liveness)).ToList());

    public bool RemoveSession(long session, out IReadOnlyList<long> released)
    {
        List<long> inodes = [];
        var status = Write((c, t) =>
        {
            inodes = c.Query<long>($"SELECT inode FROM opens WHERE session = @session{_forUpdate}", new { session }, t)
                .Concat(c.Query<long>($"SELECT inode FROM locks WHERE session = @session{_forUpdate}", new { session }, t))
                .Distinct().ToList();
            c.Execute("DELETE FROM opens WHERE session = @session", new { session }, t);
            c.Execute("DELETE FROM locks WHERE session = @session", new { session }, t);
            return c.Execute("DELETE FROM sessions WHERE id = @session", new { session }, t) > 0 ? 0 : Errno.ENOENT;
        });
        if (status != 0)
        {
            // Another survivor removed it first; its open and lock rows went with that transaction.
            released = [];
            return false;
        }
        released = inodes;
        return true;
    }

    public (Inode? Row, IReadOnlyList<BlockRef> Blocks) AddOpen(long inode, long session)
    {
        (Inode? Row, IReadOnlyList<BlockRef> Blocks) found = (null, []);
        Write((c, t) =>
        {
            // The inode row lock orders this against DeleteInode: either the inode is deleted
            // first (no row here) or this reference stops the deletion. Held from the first
            // statement, it lets the insert, which copies the id from the row, and the read of
            // row and block map follow in the same batch: one round trip on MySQL.
            using var reader = c.ExecuteReader(CommitWith(t,
                $"SELECT id FROM inodes WHERE id = @inode{_forUpdate};\n" +
                $"INSERT INTO opens (inode, session) SELECT id, @session FROM inodes WHERE id = @inode AND (mode & {FileModes.TypeMask}) = {FileModes.Regular} " +
                "AND NOT EXISTS (SELECT 1 FROM opens WHERE inode = @inode AND session = @session);\n" +
                InodeWithBlocksQuery), new { inode, session }, t);
            // Past the row lock's result (and the insert's, where a provider reports one) to the row and block map.
            while (reader.FieldCount != InodeColumnCount + 3)
            {
                if (!reader.NextResult()) throw new InvalidOperationException("the open's batch returned no row and block map");
            }
            found = ReadInodeWithBlocks(reader);
            return 0;
        });
        return found;
    }

    public bool IsShared => _dialect.IsShared;

    public IReadOnlyList<long> RemoveOpens(IReadOnlyCollection<long> inodes, long session)
    {
        if (inodes.Count == 0) return [];
        List<long> unlinked = [];
        Write((c, t) =>
        {
            unlinked = [];
            var chunks = inodes.Distinct().Chunk(SqlBatch.MaxStatements).ToList();
            for (var i = 0; i < chunks.Count; i++)
            {
                var batch = new SqlBatch();
                var list = batch.BindList(chunks[i]);
                batch.Add($"SELECT id FROM inodes WHERE id IN {list} AND nlink = 0");
                batch.Add($"DELETE FROM opens WHERE session = {batch.Bind(session)} AND inode IN {list}");
                unlinked.AddRange(FirstColumn<long>(c, t, i == chunks.Count - 1 ? CommitWith(t, batch.Sql) : batch.Sql, batch.Parameters));
            }
            return 0;
        });
        return unlinked;
    }

    public FileLockRecord? TestLock(FileLockRequest request) => Read(c =>
        FirstConflict(c.Query<LockRow>(LocksQuery(forUpdate: false), LocksOf(request)).AsList(), request));

    /// <summary>Two round trips on MySQL: the inode's row and its locks in one, the changes with the commit in the other.</summary>
    public int SetLock(FileLockRequest request, out FileLockRecord? conflict)
    {
        FileLockRecord? found = null;
        var status = Write((c, t) =>
        {
            found = null;
            long? inode;
            List<LockRow> locks;
            // Requests on one inode take turns on its row, so two hosts cannot both find no conflict.
            using (var reads = c.QueryMultiple(
                $"SELECT id FROM inodes WHERE id = @inode{_forUpdate};\n{LocksQuery(forUpdate: true)}", LocksOf(request), t))
            {
                inode = reads.ReadSingleOrDefault<long?>();
                locks = reads.Read<LockRow>().AsList();
            }
            if (inode is null) return Errno.ENOENT;
            if (request.Type != FileLockType.Unlock)
            {
                found = FirstConflict(locks, request);
                if (found is not null) return Errno.EAGAIN;
            }
            var own = locks.Where(l => l.Session == request.Session && l.Owner == request.Owner).ToList();
            var changes = new SqlBatch();
            if (request.Flock) ReplaceFlock(changes, request, own);
            else ReplaceRange(changes, request, own);
            if (changes.Count > 0) c.Execute(CommitWith(t, changes.Sql), changes.Parameters, t);
            return 0;
        });
        conflict = found;
        return status;
    }

    public int ReleaseLocks(long inode, long session, long owner, bool flock) => WriteCount((c, t) =>
        c.Execute(CommitWith(t, "DELETE FROM locks WHERE inode = @inode AND session = @session AND owner = @owner AND flock = @flag"),
            new { inode, session, owner, flag = flock ? 1 : 0 }, t));

    private static void ReplaceFlock(SqlBatch changes, FileLockRequest request, List<LockRow> own)
    {
        foreach (var old in own) changes.Add($"DELETE FROM locks WHERE id = {changes.Bind(old.Id)}");
        if (request.Type != FileLockType.Unlock) InsertLock(changes, request, request.Type, 0, long.MaxValue);
    }

    /// <summary>
    /// fcntl(2) semantics within one owner: the new range replaces whatever the owner held on
    /// those bytes (parts outside it are kept, splitting a lock in two if need be), and locks of
    /// the same type that overlap or touch it merge into one.
    /// </summary>
    private static void ReplaceRange(SqlBatch changes, FileLockRequest request, List<LockRow> own)
    {
        var (first, last) = (request.First, request.Last);
        foreach (var old in own)
        {
            var sameType = request.Type != FileLockType.Unlock && old.Type == request.Type;
            var overlaps = old.FirstByte <= request.Last && request.First <= old.LastByte;
            var touches = (request.Last != long.MaxValue && old.FirstByte == request.Last + 1) || (old.LastByte != long.MaxValue && old.LastByte + 1 == request.First);
            if (!overlaps && !(sameType && touches)) continue;
            changes.Add($"DELETE FROM locks WHERE id = {changes.Bind(old.Id)}");
            if (sameType)
            {
                first = Math.Min(first, old.FirstByte);
                last = Math.Max(last, old.LastByte);
                continue;
            }
            if (old.FirstByte < request.First) InsertLock(changes, request, old.Type, old.FirstByte, request.First - 1);
            if (old.LastByte > request.Last) InsertLock(changes, request, old.Type, request.Last + 1, old.LastByte);
        }
        if (request.Type != FileLockType.Unlock) InsertLock(changes, request, request.Type, first, last);
    }

    private static void InsertLock(SqlBatch changes, FileLockRequest owner, FileLockType type, long first, long last) =>
        changes.Add(
            "INSERT INTO locks (inode, session, owner, pid, flock, is_write, first_byte, last_byte) VALUES " +
            $"({changes.Bind(owner.Inode)}, {changes.Bind(owner.Session)}, {changes.Bind(owner.Owner)}, {changes.Bind(owner.Pid)}, " +
            $"{changes.Bind(owner.Flock ? 1 : 0)}, {changes.Bind(type == FileLockType.Write ? 1 : 0)}, {changes.Bind(first)}, {changes.Bind(last)})");

    /// <summary>
    /// The locks of the inode @inode of the kind @flag (1: flock, 0: fcntl) that overlap or touch
    /// the bytes @first to @last, in byte order; <see cref="LocksOf"/> gives the parameters. Only
    /// those can conflict with a request or merge with it: a process holding thousands of locks on
    /// one file (databases do) reads a few per request, not all of them.
    /// </summary>
    private string LocksQuery(bool forUpdate) =>
        $"SELECT {LockColumns} FROM locks WHERE inode = @inode AND flock = @flag AND first_byte <= @last AND last_byte >= @first " +
        $"ORDER BY first_byte, id{(forUpdate ? _forUpdate : "")}";

    /// <summary>The parameters of <see cref="LocksQuery"/> for the locks a request may conflict with or replace (touching ones merge).</summary>
    private static object LocksOf(FileLockRequest request) => new
    {
        inode = request.Inode,
        flag = request.Flock ? 1 : 0,
        first = request.First == 0 ? 0 : request.First - 1,
        last = request.Last == long.MaxValue ? long.MaxValue : request.Last + 1,
    };

    private static FileLockRecord? FirstConflict(List<LockRow> locks, FileLockRequest request)
    {
        if (request.Type == FileLockType.Unlock) return null;
        var conflict = locks.FirstOrDefault(l =>
            !(l.Session == request.Session && l.Owner == request.Owner)
            && (l.IsWrite != 0 || request.Type == FileLockType.Write)
            && l.FirstByte <= request.Last && request.First <= l.LastByte);
        return conflict is null ? null : new FileLockRecord(conflict.Session, conflict.Owner, conflict.Pid, conflict.Flock != 0, conflict.Type, conflict.FirstByte, conflict.LastByte);
    }

    /// <summary>As <see cref="Write"/>, for a body whose result is a count rather than an errno.</summary>
    private int WriteCount(Func<DbConnection, DbTransaction, int> body)
    {
        var count = 0;
        Write((c, t) =>
        {
            count = body(c, t);
            return 0;
        });
        return count;
    }

    private sealed class SessionRow
    {
        public long Id { get; set; }
        public string Host { get; set; } = "";
        public long Pid { get; set; }
        public byte[] Mountpoint { get; set; } = [];
        public long Started { get; set; }
        public long Heartbeat { get; set; }
        public string Liveness { get; set; } = "";
    }

    private sealed class LockRow
    {
        public long Id { get; set; }
        public long Session { get; set; }
        public long Owner { get; set; }
        public long Pid { get; set; }
        public long Flock { get; set; }
        public long IsWrite { get; set; }
        public long FirstByte { get; set; }
        public long LastByte { get; set; }

        public FileLockType Type => IsWrite != 0 ? FileLockType.Write : FileLockType.Read;
    }
}
