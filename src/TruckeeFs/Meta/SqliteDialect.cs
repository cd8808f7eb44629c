using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Meta;

/// <summary>
/// The embedded metadata database: one SQLite file in WAL mode, used through one connection
/// that operations take turns on. SQLite runs one writer at a time anyway, and each statement
/// takes microseconds, so turns cost less than a pool of connections and their file locking.
/// </summary>
public sealed class SqliteDialect : SqlDialect, IDisposable
{
    private readonly StatementCachingConnection _connection;
    private readonly FileStream _lock;
    private readonly Lock _turn = new();
    private readonly Action<DbConnection> _endTurn;
    private readonly string _path;

    public SqliteDialect(string path)
    {
        SqliteLibrary.EnsureLoaded();
        _endTurn = _ => _turn.Exit();
        _path = Path.GetFullPath(path);
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = _path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
        }.ToString();
        // One mount per database: a lock file, flock(2)ed for the dialect's lifetime (the kernel
        // releases it if the process dies).
        // (.NET's own FileShare locks are flocks too, where they are not turned off: a second
        // open of the file in this process fails with an IOException.)
        FileStream? lockFile = null;
        try
        {
            lockFile = new FileStream(_path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
            if (Posix.LockExclusively(lockFile.SafeFileHandle) != 0) throw new IOException("locked");
        }
        catch (IOException)
        {
            lockFile?.Dispose();
            throw new MetaStoreException($"metadata database {_path} is in use by another truckeefs process");
        }
        _lock = lockFile;
        _connection = new StatementCachingConnection(connectionString);
        _connection.Open();
        // A new database gets small pages: a metadata transaction changes a few rows in several
        // tables and indexes, and each changed page is written whole to the WAL (1 KiB pages
        // cost a quarter less CPU per create than 4 KiB ones, measured). An existing database
        // keeps the size it was created with.
        Execute("PRAGMA page_size=1024;");
        // WAL with synchronous=NORMAL is durable against crashes of the mount process; only a
        // power loss can drop the last transactions (fsync checkpoints them), never corrupt the
        // file. Exclusive locking mode keeps the WAL index in process memory: no shared-memory locking.
        Execute("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        // Checkpoints fsync; a larger WAL between them (up to 32 MiB) makes them rarer.
        using var pageSize = _connection.CreateCommand();
        pageSize.CommandText = "PRAGMA page_size;";
        Execute($"PRAGMA wal_autocheckpoint={(32 << 20) / Convert.ToInt64(pageSize.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)};");
        // A WAL started over after a checkpoint is cut to nothing: written over in place, each of
        // its frames (a 24-byte header and a page) partly covers a page of the file, which the
        // kernel reads from disk first once memory pressure has evicted it, one synchronous read
        // every few frames; appended to an empty file, nothing is read.
        Execute("PRAGMA journal_size_limit=0;");
    }

    private void Execute(string pragmas)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = pragmas;
        command.ExecuteNonQuery();
    }

    public override string AutoIncrementKey => "INTEGER PRIMARY KEY AUTOINCREMENT";
    public override string NameType => "BLOB";
    public override string BlobType => "BLOB";
    public override string CapType => "TEXT";
    public override string TableOptions => "";
    public override string LastInsertId => "last_insert_rowid()";
    // SQLite cannot fail a statement on a condition: the caller reads it (the COMMIT is separate).
    public override string GuardHeld => "SELECT changes() = 1";
    public override string ForUpdate => "";
    public override string Description => $"sqlite {_path}";

    /// <summary>The lock file keeps every other process out.</summary>
    public override bool IsShared => false;

    public override string Upsert(string table, string columns, string values, string keyColumns, string updates) =>
        $"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({keyColumns}) DO UPDATE SET {updates}";

    public override ConnectionLease Rent()
    {
        _turn.Enter();
        return new ConnectionLease(_connection, _endTurn);
    }

    public override DbTransaction BeginWrite(DbConnection connection) => ((StatementCachingConnection)connection).BeginWriteTransaction();

    /// <summary>
    /// Commits with synchronous=NORMAL reach the WAL but not stable storage. A commit is durable
    /// once its frames in the WAL are: one fsync(2) of the WAL does what synchronous=FULL does
    /// after every commit, for the commits that ask for it (fsync of a file). A checkpoint would
    /// sync the WAL too, but then copy pages into the database and sync that as well: fsync of a
    /// small append took 2.3 ms with it, and the WAL alone is enough. No WAL: every commit is in
    /// the database file, which the last checkpoint synced (SQLite does, in WAL mode).
    /// </summary>
    public override void Sync(DbConnection connection)
    {
        SafeFileHandle wal;
        try
        {
            wal = File.OpenHandle(_path + "-wal", FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return;
        }
        using (wal) RandomAccess.FlushToDisk(wal);
    }

    /// <summary>
    /// Byte-range and flock locks live no longer than this process (the only one using the
    /// database), so they need not be written to disk: a TEMP table of the same name, in
    /// memory, takes the place of the database's own for every statement (SQLite looks names up
    /// in TEMP first), made from the same definition. A lock operation then commits nothing to
    /// the write-ahead log. Locks a killed mount left in the file go.
    /// </summary>
    public override void Migrated(DbConnection connection)
    {
        using var definitions = connection.CreateCommand();
        definitions.CommandText = "SELECT type, sql FROM main.sqlite_master WHERE tbl_name = 'locks' AND sql IS NOT NULL ORDER BY type DESC";
        var statements = new List<string>();
        using (var reader = definitions.ExecuteReader())
        {
            while (reader.Read())
            {
                var (type, sql) = (reader.GetString(0), reader.GetString(1));
                statements.Add(type == "table"
                    ? "CREATE TEMP TABLE " + sql["CREATE TABLE ".Length..]
                    : "CREATE INDEX temp." + sql["CREATE INDEX ".Length..]);
            }
        }
        foreach (var statement in (string[])["PRAGMA temp_store=MEMORY", "DELETE FROM main.locks", .. statements])
        {
            using var command = connection.CreateCommand();
            command.CommandText = statement;
            command.ExecuteNonQuery();
        }
    }

    /// <summary>One connection holds the database exclusively: there is nobody to conflict with.</summary>
    public override bool IsTransientConflict(Exception exception) => false;

    /// <summary>SQLITE_CONSTRAINT_UNIQUE or SQLITE_CONSTRAINT_PRIMARYKEY.</summary>
    public override bool IsTrustRefused(Exception exception) => exception is SqliteException { SqliteExtendedErrorCode: 2067 or 1555 };

    /// <summary>The database is a local file on a connection held open: there is no link to lose.</summary>
    public override bool IsConnectionFailure(Exception exception) => false;

    public override void DiscardConnections()
    {
    }

    // SQLite reports every schema error as SQLITE_ERROR (1); only the message tells them apart.
    public override bool IsExistingIndex(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: 1 } e && e.Message.Contains("already exists", StringComparison.Ordinal);

    public void Dispose()
    {
        _connection.Dispose();
        _lock.Dispose();
    }
}
