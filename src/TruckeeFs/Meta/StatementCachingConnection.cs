using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace TruckeeFs.Meta;

/// <summary>
/// A SQLite connection that compiles each distinct SQL text once and reuses the compiled
/// statement. Microsoft.Data.Sqlite compiles statements per command object, and Dapper makes a
/// new command for every call, so without this every query is parsed and planned again: about
/// ten times the cost of running it (12 µs against 1.3 µs for a lookup by primary key, measured).
///
/// Commands that Dapper creates through <see cref="DbConnection.CreateCommand"/> are thin
/// handles: setting their text picks the cached command for it. Transactions from
/// <see cref="BeginWriteTransaction"/> run cached BEGIN IMMEDIATE / COMMIT / ROLLBACK statements
/// too. Not thread-safe, like any connection: one caller at a time (the dialect's turns).
/// </summary>
internal sealed class StatementCachingConnection(string connectionString) : SqliteConnection(connectionString)
{
    // Texts vary only where Dapper expands an IN list; the cache stays small, and starting over
    // when it is full costs one compilation per statement.
    private const int MaxStatements = 512;
    private readonly Dictionary<string, SqliteCommand> _statements = new(StringComparer.Ordinal);

    /// <summary>Begins a transaction that takes the write lock at once (BEGIN IMMEDIATE).</summary>
    public DbTransaction BeginWriteTransaction() => new CachedTransaction(this);

    protected override DbCommand CreateDbCommand() => new CachedCommand(this);

    /// <summary>Runs one statement of the cache with no parameters (transaction control).</summary>
    private void Run(string sql)
    {
        var command = Rent(sql);
        try
        {
            command.ExecuteNonQuery();
        }
        finally
        {
            Return(command);
        }
    }

    /// <summary>The compiled command for <paramref name="sql"/>, to use alone until <see cref="Return"/>.</summary>
    private SqliteCommand Rent(string sql)
    {
        if (_statements.Remove(sql, out var cached)) return cached;
        var command = base.CreateCommand();
        command.CommandText = sql;
        return command;
    }

    /// <summary>Gives a command back for the next caller of the same text (a nested caller meanwhile compiled its own).</summary>
    private void Return(SqliteCommand command)
    {
        command.Parameters.Clear();
        command.Transaction = null;
        if (_statements.Count >= MaxStatements) ForgetStatements();
        if (!_statements.TryAdd(command.CommandText, command)) command.Dispose();
    }

    private void ForgetStatements()
    {
        foreach (var command in _statements.Values) command.Dispose();
        _statements.Clear();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) ForgetStatements();
        base.Dispose(disposing);
    }

    /// <summary>A handle on a cached command, chosen by the text the caller sets.</summary>
    private sealed class CachedCommand(StatementCachingConnection connection) : DbCommand
    {
        private SqliteCommand? _command;
        private string _text = "";

        [AllowNull]
        public override string CommandText
        {
            get => _text;
            set
            {
                // Dapper rewrites the text after adding parameters when it expands an IN list:
                // they move to the command of the new text.
                SqliteParameter[] parameters = _command is null ? [] : [.. _command.Parameters.Cast<SqliteParameter>()];
                ReturnCommand();
                _text = value ?? "";
                if (parameters.Length > 0) Command.Parameters.AddRange(parameters);
            }
        }

        public override int CommandTimeout { get; set; } = 30;
        public override CommandType CommandType { get; set; } = CommandType.Text;
        public override bool DesignTimeVisible { get; set; }
        public override UpdateRowSource UpdatedRowSource { get; set; }

        protected override DbConnection? DbConnection
        {
            get => connection;
            set => throw new NotSupportedException("a cached command stays on its connection");
        }

        protected override DbParameterCollection DbParameterCollection => Command.Parameters;

        // The cached transactions are plain BEGIN/COMMIT statements, invisible to Microsoft.Data.Sqlite,
        // which expects commands in them to carry no transaction of its own.
        protected override DbTransaction? DbTransaction { get; set; }

        public override void Cancel() => _command?.Cancel();

        public override void Prepare() => Command.Prepare();

        public override int ExecuteNonQuery() => Bound.ExecuteNonQuery();

        public override object? ExecuteScalar() => Bound.ExecuteScalar();

        protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior) => Bound.ExecuteReader(behavior);

        protected override DbParameter CreateDbParameter() => new SqliteParameter();

        protected override void Dispose(bool disposing)
        {
            if (disposing) ReturnCommand();
            base.Dispose(disposing);
        }

        private SqliteCommand Command
        {
            get
            {
                if (_command is null)
                {
                    _command = connection.Rent(_text);
                    _command.CommandTimeout = CommandTimeout;
                }
                return _command;
            }
        }

        /// <summary>
        /// The command with its parameters named as the SQL names them: Dapper leaves out the
        /// '@', and Microsoft.Data.Sqlite then looks each one up under every prefix it knows, at
        /// every run.
        /// </summary>
        private SqliteCommand Bound
        {
            get
            {
                var command = Command;
                foreach (SqliteParameter parameter in command.Parameters)
                {
                    if (parameter.ParameterName is [not ('@' or '$' or ':'), ..] name) parameter.ParameterName = "@" + name;
                }
                return command;
            }
        }

        private void ReturnCommand()
        {
            if (_command is null) return;
            connection.Return(_command);
            _command = null;
        }
    }

    /// <summary>A write transaction as cached BEGIN IMMEDIATE / COMMIT / ROLLBACK statements.</summary>
    private sealed class CachedTransaction : DbTransaction
    {
        private readonly StatementCachingConnection _connection;
        private bool _open;

        public CachedTransaction(StatementCachingConnection connection)
        {
            _connection = connection;
            connection.Run("BEGIN IMMEDIATE");
            _open = true;
        }

        public override IsolationLevel IsolationLevel => IsolationLevel.Serializable;

        protected override DbConnection DbConnection => _connection;

        public override void Commit()
        {
            End();
            try
            {
                _connection.Run("COMMIT");
            }
            catch
            {
                // A failed COMMIT (a full disk, say) leaves the transaction open: end it, or
                // every later BEGIN on this connection fails.
                RollbackIfOpen();
                throw;
            }
        }

        public override void Rollback()
        {
            End();
            RollbackIfOpen();
        }

        // SQLite rolls a transaction back by itself after some errors: a second ROLLBACK would fail.
        private void RollbackIfOpen()
        {
            if (raw.sqlite3_get_autocommit(_connection.Handle) == 0) _connection.Run("ROLLBACK");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && _open) Rollback();
            base.Dispose(disposing);
        }

        private void End()
        {
            if (!_open) throw new InvalidOperationException("the transaction has already ended");
            _open = false;
        }
    }
}
