using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace TruckeeFs.Meta;

/// <summary>
/// The embedded metadata database: one SQLite file in WAL mode. Writers are serialized in
/// process (SQLite allows one writer at a time anyway, and waiting on a lock is cheaper than
/// SQLite's busy retries); readers run concurrently with them.
/// </summary>
public sealed class SqliteDialect : SqlDialect
{
    private readonly string _connectionString;
    private readonly string _path;

    public SqliteDialect(string path)
    {
        SQLitePCL.Batteries_V2.Init();
        _path = Path.GetFullPath(path);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = _path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
        }.ToString();
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        // WAL is persistent in the file; readers never block the writer and vice versa.
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
    }

    /// <summary>Write transactions take this lock; see the class comment.</summary>
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public override string AutoIncrementKey => "INTEGER PRIMARY KEY AUTOINCREMENT";
    public override string NameType => "BLOB";
    public override string BlobType => "BLOB";
    public override string CapType => "TEXT";
    public override string TableOptions => "";
    public override string LastInsertId => "last_insert_rowid()";
    public override string ForUpdate => "";
    public override string Description => $"sqlite {_path}";

    public override string Upsert(string table, string columns, string values, string keyColumns, string updates) =>
        $"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({keyColumns}) DO UPDATE SET {updates}";

    public override DbConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        // NORMAL in WAL mode is durable against process crashes (the mount being killed); only
        // a power loss can drop the last transactions, never corrupt the database.
        command.CommandText = "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; PRAGMA busy_timeout=30000;";
        command.ExecuteNonQuery();
        return connection;
    }

    public override DbTransaction BeginWrite(DbConnection connection) =>
        ((SqliteConnection)connection).BeginTransaction(IsolationLevel.Serializable, deferred: false);

    public override IDisposable EnterWrite()
    {
        _writeLock.Wait();
        return new Releaser(_writeLock);
    }

    /// <summary>
    /// Commits with synchronous=NORMAL reach the WAL but not stable storage; a checkpoint syncs
    /// the WAL before copying it into the database.
    /// </summary>
    public override void Sync(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        command.ExecuteNonQuery();
    }

    public override bool IsTransientConflict(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: 5 or 6 }; // SQLITE_BUSY, SQLITE_LOCKED

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) semaphore.Release();
        }
    }
}
