using System.Globalization;
using Microsoft.Data.Sqlite;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// The embedded database's write-ahead log written a transaction at a time (<see cref="SqliteWalVfs"/>):
/// one system call per commit, and every committed transaction in the file, where a crash of
/// the process cannot take it, by the time its commit returns.
/// </summary>
public sealed class SqliteWalVfsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("truckeefs-wal-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void A_commit_writes_its_frames_with_one_system_call()
    {
        using var connection = Open("one.db", "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c TEXT);" +
            "CREATE INDEX t_b ON t (b); CREATE INDEX t_c ON t (c);");
        var log = new FileInfo(Path.Combine(_directory, "one.db-wal"));
        for (var i = 0; i < 20; i++)
        {
            var before = log.Length;
            var writes = ThreadWriteCalls();
            Execute(connection, $"INSERT INTO t VALUES ({i}, '{new string('b', 300)}{i}', '{new string('c', 300)}{i}')");
            var calls = ThreadWriteCalls() - writes;
            log.Refresh();
            // The table and its two indexes: at least three pages, two writes each before.
            Assert.True((log.Length - before) / (24 + 1024) >= 3, $"the insert wrote {log.Length - before} bytes of log");
            Assert.Equal(1, calls);
        }
    }

    [Fact]
    public void Every_commit_is_in_the_log_file_when_it_returns()
    {
        using var connection = Open("each.db", "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX t_b ON t (b);");
        for (var i = 1; i <= 30; i++)
        {
            Execute(connection, $"INSERT INTO t VALUES ({i}, '{new string('x', 500)}{i}')");
            // What a kill -9 right now would leave: the files as the kernel has them.
            Assert.Equal(i, CountAfterCrash("each.db", "SELECT COUNT(*) FROM t"));
        }
    }

    [Fact]
    public void A_transaction_larger_than_the_page_cache_is_whole_in_the_file_when_its_commit_returns()
    {
        // A page cache of a few pages spills the transaction's pages into the log before the
        // commit; changing a spilled page again rewrites its frame in place, and SQLite then
        // rewrites the checksums of the frames after it once the commit frame is written.
        using var connection = Open("large.db", "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);");
        Execute(connection, "PRAGMA cache_size=10");
        Execute(connection, "BEGIN");
        for (var i = 0; i < 2_000; i++) Execute(connection, $"INSERT INTO t VALUES ({i}, '{new string('y', 200)}')");
        Execute(connection, "UPDATE t SET b = 'changed after the spill' WHERE a = 0");
        Execute(connection, "COMMIT");
        Assert.Equal(2_000L, CountAfterCrash("large.db", "SELECT COUNT(*) FROM t"));
        Assert.Equal(1L, CountAfterCrash("large.db", "SELECT COUNT(*) FROM t WHERE a = 0 AND b = 'changed after the spill'"));
    }

    /// <summary>A database set up as the metadata store sets its own (small pages, WAL, exclusive lock, no sync at commit).</summary>
    private SqliteConnection Open(string name, string schema)
    {
        SqliteLibrary.EnsureLoaded();
        var connection = new SqliteConnection($"Data Source={Path.Combine(_directory, name)};Pooling=False");
        connection.Open();
        Execute(connection, "PRAGMA page_size=1024; PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        Execute(connection, schema);
        return connection;
    }

    /// <summary>Copies the database and its log as the kernel has them and opens the copy (SQLite recovers it from the log).</summary>
    private long CountAfterCrash(string name, string query)
    {
        var copy = Path.Combine(_directory, "crash-" + Guid.NewGuid().ToString("N"));
        File.Copy(Path.Combine(_directory, name), copy + ".db");
        File.Copy(Path.Combine(_directory, name + "-wal"), copy + ".db-wal");
        using var recovered = new SqliteConnection($"Data Source={copy}.db;Pooling=False");
        recovered.Open();
        using var command = recovered.CreateCommand();
        command.CommandText = query;
        return (long)command.ExecuteScalar()!;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>write(2)-like system calls this thread has made (the kernel's per-thread I/O accounting).</summary>
    private static long ThreadWriteCalls()
    {
        foreach (var line in File.ReadLines("/proc/thread-self/io"))
        {
            if (line.StartsWith("syscw:", StringComparison.Ordinal)) return long.Parse(line.AsSpan(6).Trim(), CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException("no syscw in /proc/thread-self/io");
    }
}
