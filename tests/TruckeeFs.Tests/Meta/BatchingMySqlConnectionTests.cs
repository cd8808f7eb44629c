using Dapper;
using MySql.Data.MySqlClient;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// The MySQL connection's transactions, which cost no round trips of their own, and its
/// buffered reads: on the shared test server, through a relay that counts round trips.
/// </summary>
public sealed class BatchingMySqlConnectionTests : IDisposable
{
    private readonly MariaDbServer _server = MariaDbServer.Shared;
    private readonly string _database = $"batching_{Guid.NewGuid():N}";
    private readonly RoundTripCounter _relay;
    private readonly MySqlDialect _dialect;

    public BatchingMySqlConnectionTests()
    {
        _server.CreateDatabase(_database);
        _relay = new RoundTripCounter(_server.Host, _server.Port);
        _dialect = new MySqlDialect(new MySqlOptions
        {
            Host = _server.Host, Port = _relay.Port, Database = _database, User = _server.User, Password = _server.Password,
        });
        using var lease = _dialect.Rent();
        lease.Connection.Execute("CREATE TABLE t (id BIGINT PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB");
        lease.Connection.Execute("INSERT INTO t (id, value) VALUES (1, 10), (2, 20)");
    }

    [Fact]
    public void A_transaction_begins_with_its_first_statement_and_ends_with_one_more_round_trip()
    {
        using var lease = _dialect.Rent();
        var connection = lease.Connection;
        _relay.Reset();

        using (var transaction = _dialect.BeginWrite(connection))
        {
            Assert.Equal(10, connection.ExecuteScalar<long>("SELECT value FROM t WHERE id = 1 FOR UPDATE", transaction: transaction));
            connection.Execute("UPDATE t SET value = 11 WHERE id = 1", transaction: transaction);
            transaction.Commit();
        }

        Assert.Equal(3, _relay.RoundTrips);
        Assert.Equal(11, Value(1));
    }

    [Fact]
    public void A_transaction_sends_its_commit_with_its_last_statements()
    {
        using var lease = _dialect.Rent();
        var connection = lease.Connection;
        _relay.Reset();

        using (var transaction = _dialect.BeginWrite(connection))
        {
            Assert.Equal(20, connection.ExecuteScalar<long>("SELECT value FROM t WHERE id = 2 FOR UPDATE", transaction: transaction));
            Assert.Equal(2, connection.Execute(_dialect.CommitWith(transaction, "UPDATE t SET value = 21 WHERE id = 2; INSERT INTO t (id, value) VALUES (3, 30)"), transaction: transaction));
            Assert.True(_dialect.IsCommitting(transaction));
            transaction.Commit();
        }

        Assert.Equal(2, _relay.RoundTrips);
        Assert.Equal(21, Value(2));
        Assert.Equal(30, Value(3));
    }

    [Fact]
    public void A_transaction_that_runs_nothing_sends_nothing()
    {
        using var lease = _dialect.Rent();
        _relay.Reset();

        using (var committed = _dialect.BeginWrite(lease.Connection)) committed.Commit();
        using (var rolledBack = _dialect.BeginWrite(lease.Connection)) rolledBack.Rollback();

        Assert.Equal(0, _relay.RoundTrips);
    }

    [Fact]
    public void A_failed_statement_of_the_last_batch_leaves_the_transaction_open_to_roll_back_whole()
    {
        using var lease = _dialect.Rent();
        var connection = lease.Connection;

        using (var transaction = _dialect.BeginWrite(connection))
        {
            connection.Execute("UPDATE t SET value = 99 WHERE id = 1", transaction: transaction);
            // The duplicate key stops the batch before its COMMIT.
            var failure = Assert.Throws<MySqlException>(() => connection.Execute(
                _dialect.CommitWith(transaction, "INSERT INTO t (id, value) VALUES (4, 40); INSERT INTO t (id, value) VALUES (2, 0)"), transaction: transaction));
            Assert.Equal(1062, failure.Number);
            Assert.False(_dialect.IsConnectionFailure(failure));
        }

        Assert.Equal(10, Value(1));
        Assert.Null(ValueOrNull(4));
        // The connection is fit for the next transaction.
        using (var next = _dialect.BeginWrite(connection))
        {
            connection.Execute(_dialect.CommitWith(next, "UPDATE t SET value = 12 WHERE id = 1"), transaction: next);
            next.Commit();
        }
        Assert.Equal(12, Value(1));
    }

    [Fact]
    public void Transactions_read_what_other_connections_committed_since_they_began()
    {
        using var lease = _dialect.Rent();
        var connection = lease.Connection;

        using var transaction = _dialect.BeginWrite(connection);
        Assert.Equal(10, connection.ExecuteScalar<long>("SELECT value FROM t WHERE id = 1", transaction: transaction));
        using (var other = new MySqlConnection(_server.ConnectionStringFor(_database)))
        {
            other.Open();
            other.Execute("UPDATE t SET value = 13 WHERE id = 1");
        }

        // READ COMMITTED, set once for the connection: a repeatable read would still see 10.
        Assert.Equal(13, connection.ExecuteScalar<long>("SELECT value FROM t WHERE id = 1", transaction: transaction));
        transaction.Rollback();
    }

    [Fact]
    public void Results_larger_than_the_read_buffer_and_of_many_rows_arrive_whole()
    {
        using var lease = _dialect.Rent();
        var connection = lease.Connection;
        connection.Execute("CREATE TABLE big (id BIGINT PRIMARY KEY, data LONGBLOB NOT NULL) ENGINE=InnoDB");
        var blob = new byte[200_000];
        new Random(7).NextBytes(blob);
        connection.Execute("INSERT INTO big (id, data) VALUES (1, @blob)", new { blob });
        for (var i = 2; i <= 3000; i++) connection.Execute("INSERT INTO big (id, data) VALUES (@i, @data)", new { i, data = BitConverter.GetBytes(i) });

        Assert.Equal(blob, connection.ExecuteScalar<byte[]>("SELECT data FROM big WHERE id = 1"));
        var rows = connection.Query<(long Id, byte[] Data)>("SELECT id, data FROM big WHERE id > 1 ORDER BY id").ToList();
        Assert.Equal(2999, rows.Count);
        Assert.All(rows, row => Assert.Equal(BitConverter.GetBytes((int)row.Id), row.Data));
    }

    public void Dispose()
    {
        _dialect.Dispose();
        _relay.Dispose();
        using var connection = new MySqlConnection(_server.ConnectionStringFor(""));
        connection.Open();
        connection.Execute($"DROP DATABASE `{_database}`");
    }

    private long Value(long id) => ValueOrNull(id) ?? throw new InvalidOperationException($"no row {id}");

    private long? ValueOrNull(long id)
    {
        using var connection = new MySqlConnection(_server.ConnectionStringFor(_database));
        connection.Open();
        return connection.ExecuteScalar<long?>("SELECT value FROM t WHERE id = @id", new { id });
    }
}
