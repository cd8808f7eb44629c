using System.Data.Common;
using System.Globalization;
using Dapper;

namespace TruckeeFs.Meta;

/// <summary>
/// The metadata store on SQL: one implementation for every engine, the differences kept in
/// <see cref="SqlDialect"/>. Each public operation rents a connection from the dialect and runs
/// one transaction; transient conflicts (deadlocks, busy) rerun the whole transaction.
/// </summary>
public sealed partial class SqlMetaStore : IMetaStore
{
    private const string InodeColumns = "id, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version, allocated";

    /// <summary><see cref="InodeColumns"/> of the inodes table joined as <c>i</c>.</summary>
    private const string JoinedInodeColumns = "i.id, i.mode, i.uid, i.gid, i.nlink, i.size, i.atime, i.mtime, i.ctime, i.rdev, i.target, i.version, i.allocated";
    private const int MaxAttempts = 8;

    /// <summary>
    /// What a write that trusted the mount's knowledge instead of reading first returns when the
    /// database says otherwise: rolled back, to be done the way that reads first.
    /// </summary>
    private const int NotAsKnown = -1;

    private readonly SqlDialect _dialect;
    private readonly string _forUpdate;
    private long _committedWrites;

    /// <summary>Opens the database, creating or migrating its schema; the store owns <paramref name="dialect"/> from here on, even if this fails.</summary>
    /// <param name="rootUid">Owner of the root directory when the filesystem is created.</param>
    public SqlMetaStore(SqlDialect dialect, long now, long rootUid, long rootGid)
    {
        _dialect = dialect;
        _forUpdate = dialect.ForUpdate;
        try
        {
            Run(() =>
            {
                Schema.Migrate(dialect, now, rootUid, rootGid);
                return 0;
            });
            FilesystemId = Read(c => c.ExecuteScalar<string>("SELECT id FROM filesystem"))
                ?? throw new MetaStoreException($"{Description}: the filesystem table is empty");
        }
        catch
        {
            // Nobody else will release its connections (or SQLite's lock file).
            Dispose();
            throw;
        }
    }

    public string Description => _dialect.Description;

    public string FilesystemId { get; }

    public long CommittedWrites => Interlocked.Read(ref _committedWrites);

    public Inode? GetInode(long inode) => Read(c => SelectInode(c, null, inode));

    public Inode? Lookup(long parent, byte[] name) => Read(c => c.QuerySingleOrDefault<Inode>(
        $"SELECT {JoinedInodeColumns} " +
        "FROM dirents d JOIN inodes i ON i.id = d.inode WHERE d.parent = @parent AND d.name = @name",
        new { parent, name }));

    /// <summary>
    /// A page of a directory's entries with their inodes. Read column by column rather than
    /// through Dapper's multi-mapping, which cost three times the query for a page of 1,024.
    /// </summary>
    public IReadOnlyList<DirectoryEntry> ReadDirectory(long directory, long afterCookie, int limit) => Read(c =>
    {
        using var reader = c.ExecuteReader(
            $"SELECT d.id, d.name, {JoinedInodeColumns} " +
            "FROM dirents d JOIN inodes i ON i.id = d.inode WHERE d.parent = @directory AND d.id > @afterCookie ORDER BY d.id LIMIT @limit",
            new { directory, afterCookie, limit });
        var entries = new List<DirectoryEntry>();
        while (reader.Read()) entries.Add(new DirectoryEntry(reader.GetInt64(0), (byte[])reader.GetValue(1), InodeAt(reader, 2)));
        return entries;
    });

    /// <summary>
    /// A file's row and block map as one statement saw them, so that no commit lands between
    /// the two (an open of a file not open here needs both).
    /// </summary>
    public (Inode? Row, IReadOnlyList<BlockRef> Blocks) GetInodeWithBlocks(long inode) => Read(c =>
    {
        using var reader = c.ExecuteReader(InodeWithBlocksQuery, new { inode });
        return ReadInodeWithBlocks(reader);
    });

    /// <summary>A file's row and block map in one result (parameter <c>@inode</c>): the row's columns, then index, cap and length of a block.</summary>
    private const string InodeWithBlocksQuery =
        $"SELECT {JoinedInodeColumns}, b.idx, b.cap, b.length FROM inodes i LEFT JOIN blocks b ON b.inode = i.id WHERE i.id = @inode ORDER BY b.idx";

    /// <summary>Reads the result of <see cref="InodeWithBlocksQuery"/>.</summary>
    private static (Inode? Row, IReadOnlyList<BlockRef> Blocks) ReadInodeWithBlocks(System.Data.IDataReader reader)
    {
        Inode? row = null;
        var blocks = new List<BlockRef>();
        while (reader.Read())
        {
            row ??= InodeAt(reader, 0);
            if (!reader.IsDBNull(InodeColumnCount)) blocks.Add(new BlockRef(reader.GetInt64(InodeColumnCount), reader.IsDBNull(InodeColumnCount + 1) ? null : reader.GetString(InodeColumnCount + 1), reader.GetInt64(InodeColumnCount + 2)));
        }
        return (row, blocks);
    }

    /// <summary>An inode row from the columns of <see cref="InodeColumns"/>, in its order, starting at <paramref name="first"/>.</summary>
    private static Inode InodeAt(System.Data.IDataReader reader, int first) => new()
    {
        Id = reader.GetInt64(first), Mode = reader.GetInt64(first + 1), Uid = reader.GetInt64(first + 2), Gid = reader.GetInt64(first + 3),
        Nlink = reader.GetInt64(first + 4), Size = reader.GetInt64(first + 5), Atime = reader.GetInt64(first + 6), Mtime = reader.GetInt64(first + 7),
        Ctime = reader.GetInt64(first + 8), Rdev = reader.GetInt64(first + 9), Target = reader.IsDBNull(first + 10) ? null : (byte[])reader.GetValue(first + 10),
        Version = reader.GetInt64(first + 11), Allocated = reader.GetInt64(first + 12),
    };

    /// <summary>How many columns <see cref="InodeAt"/> reads.</summary>
    private const int InodeColumnCount = 13;

    public long ParentOf(long directory) => Read(c => ParentOf(c, null, directory));

    public IReadOnlyList<(long Parent, byte[] Name)> NamesOf(long inode) => Read(c =>
        c.Query<DirentRow>("SELECT id, parent, name, inode FROM dirents WHERE inode = @inode ORDER BY id", new { inode })
            .Select(row => (row.Parent, row.Name)).ToList());

    public FilesystemUsage Usage() => Read(c =>
    {
        var row = c.QuerySingle<UsageRow>("SELECT COUNT(*) AS inodes, COALESCE(SUM(allocated), 0) AS bytes FROM inodes");
        return new FilesystemUsage(row.Inodes, row.Bytes);
    });

    public void Sync() => Run(() =>
    {
        using var lease = _dialect.Rent();
        _dialect.Sync(lease.Connection);
        return 0;
    });

    public void Dispose()
    {
        if (_dialect is IDisposable disposable) disposable.Dispose();
    }

    private Inode? SelectInode(DbConnection connection, DbTransaction? transaction, long inode) =>
        connection.QuerySingleOrDefault<Inode>(
            $"SELECT {InodeColumns} FROM inodes WHERE id = @inode{(transaction is null ? "" : _forUpdate)}",
            new { inode }, transaction);

    private static long ParentOf(DbConnection connection, DbTransaction? transaction, long directory) =>
        directory == Schema.RootInode
            ? Schema.RootInode
            : connection.ExecuteScalar<long?>("SELECT parent FROM dirents WHERE inode = @directory", new { directory }, transaction) ?? Schema.RootInode;

    private T Read<T>(Func<DbConnection, T> body) => Run(() =>
    {
        using var lease = _dialect.Rent();
        return body(lease.Connection);
    });

    /// <summary>
    /// Runs <paramref name="body"/> in a write transaction, committed only if it returns 0. The
    /// body may send the COMMIT with its last statements (<see cref="CommitWith"/>), and then
    /// returns 0.
    /// </summary>
    private int Write(Func<DbConnection, DbTransaction, int> body) => Run(() =>
    {
        using var lease = _dialect.Rent();
        using var transaction = _dialect.BeginWrite(lease.Connection);
        var committing = false;
        try
        {
            var result = body(lease.Connection, transaction);
            if (result != 0)
            {
                transaction.Rollback();
                return result;
            }
            committing = true;
            transaction.Commit();
            Interlocked.Increment(ref _committedWrites);
            return result;
        }
        catch (Exception e) when ((committing || _dialect.IsCommitting(transaction)) && _dialect.IsConnectionFailure(e))
        {
            // The server may have applied the commit before the link failed: running the
            // operation again could report EEXIST for a create that succeeded, or apply it twice.
            _dialect.DiscardConnections();
            throw new MetaStoreException($"metadata database ({Description}) failed during a commit, which may or may not have been applied: {e.Message}", e);
        }
    });

    /// <summary>
    /// The last statements of a write transaction's body, with the COMMIT where the engine sends
    /// both at once; nothing may run in the transaction after them.
    /// </summary>
    private string CommitWith(DbTransaction transaction, string sql) => _dialect.CommitWith(transaction, sql);

    /// <summary>
    /// A write transaction that trusts what the mount knows instead of reading first:
    /// <paramref name="guard"/>, an UPDATE whose WHERE states what is trusted, goes first, then
    /// <paramref name="rest"/>, with the COMMIT where the engine sends it in the same batch
    /// (MySQL: one round trip); <paramref name="readLast"/> reads the result of the last
    /// statement of <paramref name="rest"/>. If the guard did not change exactly one row, or an
    /// INSERT found its unique key taken, the transaction is rolled back (on MySQL the failed
    /// guard stops the batch before the rest and the COMMIT) and this returns
    /// <see cref="NotAsKnown"/>, for the caller to do the write the way that reads first.
    /// </summary>
    private int WriteTrusting(string guard, string rest, object parameters, Func<System.Data.IDataReader, bool> readLast) => Write((c, t) =>
    {
        try
        {
            // A reader rather than Dapper's grid, which cancels a command that failed part way
            // (MySql.Data does that from a connection of its own); for the same reason every
            // result is read, even when the guard already tells the answer.
            using var results = c.ExecuteReader(CommitWith(t, $"{guard};\n{_dialect.GuardHeld};\n{rest}"), parameters, t);
            results.Read();
            var held = Convert.ToInt64(results.GetValue(0), CultureInfo.InvariantCulture) == 1;
            results.NextResult();
            var last = readLast(results);
            if (!held) return NotAsKnown;
            // With the guard held and every INSERT done, the last result is there; the COMMIT
            // may have run already, so a write that reads first must not follow.
            if (!last) throw new InvalidOperationException("a trusted write's last statement returned nothing");
            return 0;
        }
        catch (Exception e) when (_dialect.IsTrustRefused(e))
        {
            return NotAsKnown;
        }
    });

    /// <summary>
    /// Runs one attempt after another: transient conflicts are retried with a growing random
    /// pause, a failed connection once at once (a kept connection the server dropped, or a
    /// restart between two operations, must not fail an operation that can simply reconnect).
    /// A server that stays down fails the second attempt too, so the wait for it is bounded by
    /// a few connect or command timeouts. An attempt that failed during its commit
    /// (<see cref="MetaStoreException"/>) is never run again.
    /// </summary>
    private T Run<T>(Func<T> attempt)
    {
        var reconnected = false;
        for (var tries = 1; ; tries++)
        {
            try
            {
                return attempt();
            }
            catch (Exception e) when (e is not MetaStoreException && _dialect.IsConnectionFailure(e))
            {
                _dialect.DiscardConnections();
                if (reconnected) throw new MetaStoreException($"metadata database ({Description}) failed: {e.Message}", e);
                reconnected = true;
            }
            catch (Exception e) when (tries < MaxAttempts && _dialect.IsTransientConflict(e))
            {
                Thread.Sleep(Random.Shared.Next(1, 5 << tries));
            }
            catch (Exception e) when (e is DbException or TimeoutException)
            {
                throw new MetaStoreException($"metadata database ({Description}) failed: {e.Message}", e);
            }
        }
    }

    private sealed class DirentRow
    {
        public long Id { get; set; }
        public long Parent { get; set; }
        public byte[] Name { get; set; } = [];
        public long Inode { get; set; }
    }

    private sealed class UsageRow
    {
        public long Inodes { get; set; }
        public long Bytes { get; set; }
    }
}
