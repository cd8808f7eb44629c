using System.Diagnostics;
using System.Text;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Meta;

/// <summary>A private MariaDB server for the outage tests, which take it down; they run one at a time.</summary>
public sealed class OutageServer : IDisposable
{
    public MariaDbServer Server { get; } = MariaDbServer.StartNew();

    public void Dispose() => Server.Dispose();
}

/// <summary>
/// A metadata server that goes away under a live store: operations fail with a
/// <see cref="MetaStoreException"/> naming it, in bounded time, and the same store works again
/// once the server is back, without being reopened.
/// </summary>
public sealed class MariaDbOutageTests(OutageServer fixture) : IClassFixture<OutageServer>
{
    private const long Root = 1;
    private const long FileMode = FileModes.Regular | 0x1A4;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);
    private readonly MariaDbServer _server = fixture.Server;

    [Fact]
    public void A_restart_between_two_operations_goes_unnoticed()
    {
        using var store = Open($"restart_{Guid.NewGuid():N}");
        // Several kept connections, all of which the restart cuts while they sit idle.
        Parallel.For(0, 16, i => Assert.Equal(0, store.Create(Root, N($"before-{i}"), new NewNode(FileMode, 0, 0), 1, out _)));

        _server.Stop();
        _server.Start();

        Parallel.For(0, 16, i => Assert.NotNull(store.Lookup(Root, N($"before-{i}"))));
        Assert.Equal(0, store.Create(Root, N("after"), new NewNode(FileMode, 0, 0), 2, out _));
    }

    [Fact]
    public void A_stopped_server_fails_operations_and_the_same_store_recovers_after_start()
    {
        using var store = Open($"stop_{Guid.NewGuid():N}");
        Parallel.For(0, 16, i => Assert.Equal(0, store.Create(Root, N($"before-{i}"), new NewNode(FileMode, 0, 0), 1, out _)));

        _server.Stop();
        try
        {
            AssertFailsNamingTheServer(store, () => store.Lookup(Root, N("before-1")));
            AssertFailsNamingTheServer(store, () => store.Create(Root, N("during"), new NewNode(FileMode, 0, 0), 2, out _));
            AssertFailsNamingTheServer(store, () => store.ReadDirectory(Root, 0, 100));
        }
        finally
        {
            _server.Start();
        }

        Parallel.For(0, 16, i => Assert.NotNull(store.Lookup(Root, N($"before-{i}"))));
        Assert.Null(store.Lookup(Root, N("during")));
        Assert.Equal(0, store.Create(Root, N("after"), new NewNode(FileMode, 0, 0), 3, out var after));
        Assert.Equal(after.Id, store.Lookup(Root, N("after"))!.Id);
        Assert.Equal(17, store.ReadDirectory(Root, 0, 100).Count);
    }

    [Fact]
    public void A_frozen_server_times_out_operations_and_the_same_store_recovers_after_thaw()
    {
        using var store = Open($"freeze_{Guid.NewGuid():N}");
        Parallel.For(0, 4, i => Assert.Equal(0, store.Create(Root, N($"before-{i}"), new NewNode(FileMode, 0, 0), 1, out _)));

        _server.Freeze();
        try
        {
            AssertFailsNamingTheServer(store, () => store.Lookup(Root, N("before-1")));
            AssertFailsNamingTheServer(store, () => store.Create(Root, N("during"), new NewNode(FileMode, 0, 0), 2, out _));
        }
        finally
        {
            _server.Thaw();
        }

        Parallel.For(0, 4, i => Assert.NotNull(store.Lookup(Root, N($"before-{i}"))));
        Assert.Equal(0, store.Create(Root, N("after"), new NewNode(FileMode, 0, 0), 3, out _));
    }

    /// <summary>
    /// Each attempt waits at most a connect or command timeout, and a failed connection is
    /// tried once more: a few timeouts bound the wait, never the server's absence.
    /// </summary>
    private void AssertFailsNamingTheServer(IMetaStore store, Action operation)
    {
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<MetaStoreException>(operation);
        Assert.StartsWith($"mysql 127.0.0.1:{_server.Port}/", store.Description, StringComparison.Ordinal);
        Assert.Contains(store.Description, error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < 6 * Timeout, $"took {clock.Elapsed}");
    }

    private SqlMetaStore Open(string database) => new(new MySqlDialect(new MySqlOptions
    {
        Host = _server.Host,
        Port = _server.Port,
        Database = database,
        User = _server.User,
        Password = _server.Password,
        ConnectTimeout = Timeout,
    }), 1, 0, 0);

    private static byte[] N(string name) => Encoding.UTF8.GetBytes(name);
}
