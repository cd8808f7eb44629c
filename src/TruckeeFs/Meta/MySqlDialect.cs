using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using System.Net.Sockets;
using MySql.Data.MySqlClient;

namespace TruckeeFs.Meta;

/// <summary>Where a MySQL or MariaDB metadata database is and how to log in.</summary>
public sealed record MySqlOptions
{
    public required string Host { get; init; }
    public int Port { get; init; } = 3306;
    public required string Database { get; init; }
    public string User { get; init; } = "truckeefs";
    public string? Password { get; init; }
    public bool Ssl { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// MySQL 8 / MariaDB 10+ through MySql.Data, InnoDB tables. Names are VARBINARY so they compare
/// as bytes; caps are ASCII with a binary collation. Writers lock the rows they read
/// (SELECT ... FOR UPDATE); deadlocks, lock timeouts and lost unique-key races are retried.
/// </summary>
public sealed class MySqlDialect : SqlDialect, IDisposable
{
    /// <summary>Seconds a transaction may stay idle before MariaDB aborts it (see <see cref="AbortIdleTransactions"/>).</summary>
    private const int IdleTransactionTimeout = 5;

    /// <summary>MySQL's error for a system variable it does not have (ER_UNKNOWN_SYSTEM_VARIABLE).</summary>
    private const int UnknownSystemVariable = 1193;

    /// <summary>Open connections kept beyond this many idle are closed.</summary>
    private const int MaxIdle = 64;

    private const int DuplicateKey = 1062;
    private const int SubqueryReturnsRows = 1242;
    private const int LockWaitTimeout = 1205;
    private const int Deadlock = 1213;
    private const int DuplicateKeyName = 1061;
    private const int UnableToConnect = 1042;
    private const int ServerShutdown = 1053;
    private const int AbortingConnection = 1152;
    private const int ConnectionKilled = 1927;
    private const int ServerGone = 2006;
    private const int ServerLost = 2013;
    private const int InactivityTimeout = 4031;
    private const int AccessDenied = 1045;
    private readonly string _connectionString;
    private readonly MySqlOptions _options;
    private readonly ConcurrentStack<BatchingMySqlConnection> _idle = new();
    private readonly Action<DbConnection> _giveBack;
    private int _idleCount;
    private volatile bool _disposed;

    public MySqlDialect(MySqlOptions options)
    {
        MySqlDriver.Prepare();
        _options = options;
        var builder = new MySqlConnectionStringBuilder
        {
            Server = options.Host,
            Port = (uint)options.Port,
            Database = options.Database,
            UserID = options.User,
            Password = options.Password ?? "",
            SslMode = options.Ssl ? MySqlSslMode.Required : MySqlSslMode.None,
            ConnectionTimeout = (uint)Math.Max(1, options.ConnectTimeout.TotalSeconds),
            DefaultCommandTimeout = (uint)Math.Max(1, options.ConnectTimeout.TotalSeconds),
            Pooling = false,
            CharacterSet = "utf8mb4",
            AllowUserVariables = true,
        };
        _connectionString = builder.ConnectionString;
        _giveBack = GiveBack;
        EnsureDatabase(builder);
    }

    public override string AutoIncrementKey => "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY";
    public override string NameType => "VARBINARY(255)";
    public override string BlobType => "LONGBLOB";
    public override string CapType => "VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin";
    public override string TableOptions => "ENGINE=InnoDB";
    public override string LastInsertId => "LAST_INSERT_ID()";
    // A scalar subquery of two rows is an error (1242), which stops the batch. In a SET: in a
    // SELECT, the error comes in the middle of a result set, and MySql.Data drops the connection
    // for it; DO turns it into a warning and goes on.
    public override string GuardHeld => "SET @guard_held = (SELECT 1 UNION ALL SELECT 1 FROM DUAL WHERE ROW_COUNT() <> 1);\nSELECT @guard_held";
    public override string ForUpdate => " FOR UPDATE";
    public override string Description => $"mysql {_options.Host}:{_options.Port}/{_options.Database}";

    public override bool IsShared => true;

    public override string Upsert(string table, string columns, string values, string keyColumns, string updates) =>
        $"INSERT INTO {table} ({columns}) VALUES ({values}) ON DUPLICATE KEY UPDATE {updates}";

    /// <summary>
    /// Connections are kept open here rather than in MySql.Data's pool, which pings the server
    /// on every checkout while holding the pool's lock: each operation paid one more round trip,
    /// and concurrent operations queued behind each other's pings. Without the ping a kept
    /// connection may be dead (server restarted, idle timeout); its first statement then fails
    /// as a connection failure, which <see cref="SqlMetaStore"/> answers by discarding the kept
    /// connections and running the operation again on a new one.
    /// </summary>
    public override ConnectionLease Rent()
    {
        if (_idle.TryPop(out var connection))
        {
            Interlocked.Decrement(ref _idleCount);
            return new ConnectionLease(connection, _giveBack);
        }
        connection = new BatchingMySqlConnection(_connectionString);
        try
        {
            OpenSession(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return new ConnectionLease(connection, _giveBack);
    }

    /// <summary>
    /// Opens a connection with the session settings every transaction relies on, sent once:
    /// READ COMMITTED, so that locking reads see the newest rows and take no gap locks (concurrent
    /// creates in one directory do not deadlock each other), and the abort of transactions left
    /// idle (<see cref="IdleTransactionTimeout"/>). Every transaction here runs its statements
    /// back to back, so only a frozen client (a stopped or stalled host) goes idle inside one; the
    /// row locks it holds would otherwise block the other hosts, even the survivor removing its
    /// session, until the server's lock wait timeout, and again after it. MySQL lacks the
    /// setting: there such locks last until the frozen client's connection drops.
    /// </summary>
    private static void OpenSession(BatchingMySqlConnection connection)
    {
        try
        {
            connection.Open($"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; SET SESSION idle_transaction_timeout = {IdleTransactionTimeout}");
        }
        catch (MySqlException e) when (e.Number == UnknownSystemVariable)
        {
            // MySQL: the isolation level, first in the batch, is set.
        }
    }

    /// <summary>MySql.Data closes a connection whose link failed, so only live ones are kept.</summary>
    private void GiveBack(DbConnection connection)
    {
        if (connection.State == ConnectionState.Open && !_disposed)
        {
            if (Interlocked.Increment(ref _idleCount) <= MaxIdle)
            {
                _idle.Push((BatchingMySqlConnection)connection);
                // A Dispose that ran meanwhile did not see this one.
                if (_disposed) DiscardConnections();
                return;
            }
            Interlocked.Decrement(ref _idleCount);
        }
        connection.Dispose();
    }

    /// <summary>Begins a transaction that sends nothing of its own: see <see cref="BatchingMySqlConnection"/>.</summary>
    public override DbTransaction BeginWrite(DbConnection connection) => connection.BeginTransaction();

    public override string CommitWith(DbTransaction transaction, string sql) => ((BatchingMySqlConnection.Transaction)transaction).CommitWith(sql);

    public override bool IsCommitting(DbTransaction transaction) => ((BatchingMySqlConnection.Transaction)transaction).CommitSent;

    /// <summary>InnoDB makes each commit durable (innodb_flush_log_at_trx_commit=1).</summary>
    public override void Sync(DbConnection connection)
    {
    }

    public override bool IsTransientConflict(Exception exception) =>
        exception is MySqlException { Number: Deadlock or LockWaitTimeout or DuplicateKey };

    public override bool IsTrustRefused(Exception exception) => exception is MySqlException { Number: DuplicateKey or SubqueryReturnsRows };

    /// <summary>
    /// MySql.Data reports a lost link as error 1042 when connecting, or as a MySqlException
    /// (number 0) wrapping the socket's IOException or a timeout once connected; the server, as
    /// it goes down or drops a connection, sends one of the other numbers.
    /// </summary>
    public override bool IsConnectionFailure(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is MySqlException { Number: UnableToConnect or ServerShutdown or AbortingConnection or ConnectionKilled or ServerGone or ServerLost or InactivityTimeout }
                or IOException or SocketException or TimeoutException)
                return true;
        }
        return false;
    }

    public override void DiscardConnections()
    {
        while (_idle.TryPop(out var connection))
        {
            Interlocked.Decrement(ref _idleCount);
            connection.Dispose();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        DiscardConnections();
    }

    public override bool IsExistingIndex(Exception exception) => exception is MySqlException { Number: DuplicateKeyName };

    /// <summary>Creates the database on first use when the user may; otherwise it must exist.</summary>
    private void EnsureDatabase(MySqlConnectionStringBuilder builder)
    {
        var database = builder.Database;
        // Its own unpooled connection: a pool for the server without a database would keep an
        // idle connection open for the life of the process.
        var server = new MySqlConnectionStringBuilder(builder.ConnectionString) { Database = "", Pooling = false };
        try
        {
            using var connection = new MySqlConnection(server.ConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = $"CREATE DATABASE IF NOT EXISTS `{database.Replace("`", "``", StringComparison.Ordinal)}`";
            command.ExecuteNonQuery();
        }
        catch (MySqlException e) when (e.Number is 1044 or 1227)
        {
            // No right to create databases: the administrator made it, or opening it will say what is wrong.
        }
        catch (MySqlException e) when (e.Number is AccessDenied)
        {
            throw new MetaStoreException($"metadata database {Description} refused the login of user '{builder.UserID}': {e.Message}", e);
        }
        catch (MySqlException e)
        {
            throw new MetaStoreException($"metadata database {Description} {(IsConnectionFailure(e) ? "is unreachable" : "failed")}: {e.Message}", e);
        }
    }
}
