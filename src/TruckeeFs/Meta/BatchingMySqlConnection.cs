using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Net.Sockets;
using MySql.Data.MySqlClient;

namespace TruckeeFs.Meta;

/// <summary>
/// A MySQL connection whose transactions cost no round trips of their own. MySql.Data's
/// BeginTransaction sends SET SESSION TRANSACTION ISOLATION LEVEL and BEGIN, one round trip each,
/// and Commit one more; a metadata operation of two or three statements paid twice for its
/// transaction what it paid for its work. Here the isolation level is set once, when the
/// connection opens; BEGIN travels in front of the transaction's first statement, and COMMIT
/// with its last ones where the caller asks (<see cref="Transaction.CommitWith"/>), so that a
/// transaction that reads its rows and then writes them costs two round trips.
///
/// Commands that Dapper creates through <see cref="DbConnection.CreateCommand"/> wrap a
/// MySqlCommand and accept this connection's transactions (MySql.Data's own would refuse them).
/// Not thread-safe, like any connection: one caller at a time (the dialect lends it to one).
/// </summary>
internal sealed class BatchingMySqlConnection(string connectionString) : DbConnection
{
    /// <summary>Bytes read from the socket at once: a whole metadata result fits.</summary>
    private const int ReadBuffer = 16 << 10;

    private readonly MySqlConnection _connection = new(connectionString);
    private Transaction? _transaction;

    // MySql.Data composes its connection string anew at every read, and Dapper reads it for
    // every command (a cache key).
    [AllowNull]
    public override string ConnectionString
    {
        get => connectionString;
        set => throw new NotSupportedException("a connection keeps its connection string");
    }

    public override string Database => _connection.Database;
    public override string DataSource => _connection.DataSource;
    public override string ServerVersion => _connection.ServerVersion;
    public override ConnectionState State => _connection.State;

    /// <summary>Opens the connection and runs <paramref name="setup"/>, the session's settings, as one batch.</summary>
    public void Open(string setup)
    {
        _connection.Open();
        BufferReads(_connection);
        WaitInTheKernel(_connection);
        using var command = new MySqlCommand(setup, _connection);
        command.ExecuteNonQuery();
    }

    public override void Open() => Open("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");

    public override void Close() => _connection.Close();

    public override void ChangeDatabase(string databaseName) => _connection.ChangeDatabase(databaseName);

    /// <summary>The isolation level is the session's (set when the connection opened); <paramref name="isolationLevel"/> must be unspecified.</summary>
    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel)
    {
        if (isolationLevel != IsolationLevel.Unspecified) throw new NotSupportedException("the isolation level is set once per connection");
        if (_transaction is not null) throw new InvalidOperationException("a transaction is already open on this connection");
        return _transaction = new Transaction(this);
    }

    protected override DbCommand CreateDbCommand() => new Command(this);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _connection.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>The text to send for <paramref name="sql"/>: with the BEGIN of a transaction that has sent nothing yet.</summary>
    private string Outgoing(string sql)
    {
        if (_transaction is not { Begun: false } pending) return sql;
        pending.Begun = true;
        return "BEGIN;\n" + sql;
    }

    /// <summary>Runs one statement of the connection's own (transaction control).</summary>
    private void Run(string sql)
    {
        using var command = new MySqlCommand(sql, _connection);
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// MySql.Data 8.0.16 connects asynchronously, after which .NET runs every synchronous read
    /// of the socket through its event loop: the loop's thread wakes, hands the readiness to a
    /// thread-pool worker, and that one wakes the caller. On a small virtual machine those thread
    /// switches cost several times the CPU of the query itself, and the workers' spinning takes
    /// it from the database server next door. The socket's stream is replaced by one that waits
    /// in poll(2) on the caller's thread (<see cref="PollingSocketStream"/>), under the same
    /// timeouts. A TLS connection keeps .NET's stream (the TLS layer holds it).
    /// </summary>
    internal static void WaitInTheKernel(MySqlConnection connection)
    {
        var (timed, socketStream) = TimedStream(connection);
        if (timed is null || socketStream?.GetValue(timed) is not Stream underneath)
            throw new InvalidOperationException("MySql.Data's socket stream is not where version 8.0.16 keeps it; check the polling reads against this version");
        if (underneath is NetworkStream network) socketStream.SetValue(timed, new PollingSocketStream(network));
    }

    /// <summary>The stream MySql.Data reads and writes the connection's socket through, or null.</summary>
    internal static Stream? SocketStream(MySqlConnection connection)
    {
        var (timed, socketStream) = TimedStream(connection);
        return timed is null ? null : socketStream?.GetValue(timed) as Stream;
    }

    /// <summary>MySql.Data's timed stream of an open connection, and its field holding the socket's stream.</summary>
    private static (object? Timed, FieldInfo? SocketStream) TimedStream(MySqlConnection connection) =>
        (DriverField("MySqlStream", "timedStream")?.GetValue(PacketStream(connection)), DriverField("TimedStream", "_baseStream"));

    /// <summary>MySql.Data's packet stream of an open connection (its MySqlStream), or null.</summary>
    private static object? PacketStream(MySqlConnection connection)
    {
        var driver = DriverField("MySqlConnection", "driver")?.GetValue(connection);
        var handler = DriverField("Driver", "handler")?.GetValue(driver);
        return DriverField("NativeDriver", "stream")?.GetValue(handler);
    }

    /// <summary>A private field of one of MySql.Data's client classes, or null where version 8.0.16 had it and this one has not.</summary>
    private static FieldInfo? DriverField(string type, string field) =>
        typeof(MySqlConnection).Assembly.GetType("MySql.Data.MySqlClient." + type)?.GetField(field, BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>
    /// MySql.Data 8.0.16 reads each packet of a result from the socket in two reads (header,
    /// then body) without buffering: a one-row result of twelve columns took some thirty
    /// system calls, which cost more than the query (half of a primary key lookup's time,
    /// measured). Its packet reader is given a buffer, so that one read takes whatever the
    /// server has sent; writes still go out unbuffered.
    /// </summary>
    private static void BufferReads(MySqlConnection connection)
    {
        var stream = PacketStream(connection);
        var input = DriverField("MySqlStream", "inStream");
        if (stream is null || input?.GetValue(stream) is not Stream unbuffered)
            throw new InvalidOperationException("MySql.Data's packet stream is not where version 8.0.16 keeps it; check the read buffering against this version");
        if (unbuffered is not BufferedStream) input.SetValue(stream, new BufferedStream(unbuffered, ReadBuffer));
    }

    /// <summary>
    /// A transaction as statements in the connection's batches: BEGIN goes with the first
    /// statement run in it (a transaction that runs none sends nothing), COMMIT and ROLLBACK
    /// alone unless <see cref="CommitWith"/> sent the COMMIT already.
    /// </summary>
    public sealed class Transaction : DbTransaction
    {
        private readonly BatchingMySqlConnection _connection;
        private bool _ended;

        internal Transaction(BatchingMySqlConnection connection) => _connection = connection;

        /// <summary>Whether BEGIN has been sent.</summary>
        internal bool Begun { get; set; }

        /// <summary>
        /// Whether the COMMIT has been sent (<see cref="CommitWith"/>): from then on a failure
        /// may come after the server applied the transaction.
        /// </summary>
        public bool CommitSent { get; private set; }

        public override IsolationLevel IsolationLevel => IsolationLevel.ReadCommitted;

        protected override DbConnection DbConnection => _connection;

        /// <summary>
        /// The transaction's last statements, <paramref name="sql"/>, followed by its COMMIT: one
        /// batch. The statements may return rows; nothing may be run in the transaction after them.
        /// Should one fail, the server runs none after it, and the transaction is still open for
        /// <see cref="Rollback"/>.
        /// </summary>
        public string CommitWith(string sql)
        {
            if (_ended || CommitSent) throw new InvalidOperationException("the transaction has already ended");
            CommitSent = true;
            return sql + ";\nCOMMIT";
        }

        public override void Commit()
        {
            var sent = CommitSent;
            End();
            if (Begun && !sent) _connection.Run("COMMIT");
        }

        public override void Rollback()
        {
            End();
            // A connection that failed is closed, and its server rolled the transaction back.
            if (Begun && _connection.State == ConnectionState.Open) _connection.Run("ROLLBACK");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_ended) Rollback();
            base.Dispose(disposing);
        }

        private void End()
        {
            if (_ended) throw new InvalidOperationException("the transaction has already ended");
            _ended = true;
            _connection._transaction = null;
        }
    }

    /// <summary>A MySqlCommand on this connection, sent with the BEGIN of a transaction that has sent nothing yet.</summary>
    private sealed class Command(BatchingMySqlConnection connection) : DbCommand
    {
        private readonly MySqlCommand _command = new() { Connection = connection._connection };

        [AllowNull]
        public override string CommandText { get; set; } = "";

        public override int CommandTimeout
        {
            get => _command.CommandTimeout;
            set => _command.CommandTimeout = value;
        }

        public override CommandType CommandType { get; set; } = CommandType.Text;
        public override bool DesignTimeVisible { get; set; }
        public override UpdateRowSource UpdatedRowSource { get; set; }

        protected override DbConnection? DbConnection
        {
            get => connection;
            set => throw new NotSupportedException("a command stays on its connection");
        }

        protected override DbParameterCollection DbParameterCollection => _command.Parameters;

        // The connection knows its transaction; MySql.Data must not see it.
        protected override DbTransaction? DbTransaction { get; set; }

        public override void Cancel() => _command.Cancel();

        public override void Prepare()
        {
        }

        public override int ExecuteNonQuery() => Ready().ExecuteNonQuery();

        public override object? ExecuteScalar() => Ready().ExecuteScalar();

        protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior) => Ready().ExecuteReader(behavior);

        protected override DbParameter CreateDbParameter() => _command.CreateParameter();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _command.Dispose();
            base.Dispose(disposing);
        }

        private MySqlCommand Ready()
        {
            if (CommandType != CommandType.Text) throw new NotSupportedException("only SQL text is supported");
            _command.CommandText = connection.Outgoing(CommandText);
            return _command;
        }
    }
}
