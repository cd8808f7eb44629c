using Dapper;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>The embedded connection's reuse of compiled statements, under Dapper's ways of using commands.</summary>
public sealed class StatementCachingConnectionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("truckeefs-statements-").FullName;
    private readonly StatementCachingConnection _connection;

    public StatementCachingConnectionTests()
    {
        SqliteLibrary.EnsureLoaded();
        _connection = new StatementCachingConnection($"Data Source={Path.Combine(_directory, "t.db")};Pooling=False");
        _connection.Open();
        _connection.Execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value TEXT NOT NULL)");
        for (var i = 1; i <= 5; i++) _connection.Execute("INSERT INTO t (id, value) VALUES (@i, @value)", new { i, value = $"v{i}" });
    }

    [Fact]
    public void A_statement_run_again_binds_the_new_parameters()
    {
        for (var i = 1; i <= 5; i++)
            Assert.Equal($"v{i}", _connection.QuerySingle<string>("SELECT value FROM t WHERE id = @i", new { i }));
        Assert.Null(_connection.QuerySingleOrDefault<string>("SELECT value FROM t WHERE id = @i", new { i = 99 }));
    }

    [Fact]
    public void An_expanded_in_list_keeps_its_parameters()
    {
        Assert.Equal(["v2", "v4"], _connection.Query<string>("SELECT value FROM t WHERE id IN @ids ORDER BY id", new { ids = new[] { 2, 4 } }));
        Assert.Equal(["v1", "v3", "v5"], _connection.Query<string>("SELECT value FROM t WHERE id IN @ids ORDER BY id", new { ids = new[] { 1, 3, 5 } }));
    }

    [Fact]
    public void A_text_in_use_is_compiled_again_for_a_nested_caller()
    {
        using var outer = _connection.CreateCommand();
        outer.CommandText = "SELECT value FROM t WHERE id >= @i ORDER BY id";
        var parameter = outer.CreateParameter();
        parameter.ParameterName = "@i";
        parameter.Value = 4;
        outer.Parameters.Add(parameter);
        using var reader = outer.ExecuteReader();
        Assert.True(reader.Read());
        // The same text again while the first reader is open.
        Assert.Equal(["v5"], _connection.Query<string>("SELECT value FROM t WHERE id >= @i ORDER BY id", new { i = 5 }));
        Assert.Equal("v4", reader.GetString(0));
        Assert.True(reader.Read());
        Assert.Equal("v5", reader.GetString(0));
    }

    [Fact]
    public void A_write_transaction_commits_or_rolls_back_whole()
    {
        using (var transaction = _connection.BeginWriteTransaction())
        {
            _connection.Execute("UPDATE t SET value = 'changed' WHERE id = 1", transaction: transaction);
            _connection.Execute("DELETE FROM t WHERE id = 2", transaction: transaction);
            transaction.Rollback();
        }
        using (var abandoned = _connection.BeginWriteTransaction())
            _connection.Execute("DELETE FROM t WHERE id = 3", transaction: abandoned);
        Assert.Equal(5, _connection.ExecuteScalar<long>("SELECT COUNT(*) FROM t WHERE value <> 'changed'"));

        using (var transaction = _connection.BeginWriteTransaction())
        {
            _connection.Execute("DELETE FROM t WHERE id = 5", transaction: transaction);
            transaction.Commit();
        }
        Assert.Equal(4, _connection.ExecuteScalar<long>("SELECT COUNT(*) FROM t"));
    }

    [Fact]
    public void A_failed_commit_ends_the_transaction()
    {
        _connection.Execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
        _connection.Execute("CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)");
        _connection.Execute("PRAGMA foreign_keys = ON");
        using (var transaction = _connection.BeginWriteTransaction())
        {
            // A deferred constraint fails only at COMMIT.
            _connection.Execute("INSERT INTO child (parent) VALUES (42)", transaction: transaction);
            Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(transaction.Commit);
        }
        using (var next = _connection.BeginWriteTransaction())
        {
            _connection.Execute("INSERT INTO parent (id) VALUES (1)", transaction: next);
            next.Commit();
        }
        Assert.Equal(0, _connection.ExecuteScalar<long>("SELECT COUNT(*) FROM child"));
        Assert.Equal(1, _connection.ExecuteScalar<long>("SELECT COUNT(*) FROM parent"));
    }

    public void Dispose()
    {
        _connection.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
