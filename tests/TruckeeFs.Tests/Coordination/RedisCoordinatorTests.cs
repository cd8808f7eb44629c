using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;
using TruckeeFs.Coordination;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Coordination;

/// <summary>
/// The conformance suite on Redis coordinators connected to the shared test server (two
/// coordinators, two connections: two hosts), plus what only a network server can do to a client.
/// </summary>
public sealed class RedisCoordinatorTests : CoordinatorConformance
{
    private static readonly TimeSpan ShortTimeout = TimeSpan.FromSeconds(1);

    protected override async ValueTask<ICoordinator> ConnectAsync(string prefix) => await RedisCoordinator.ConnectAsync(new RedisOptions
    {
        // "host:port" wins over Port, which points nowhere.
        Host = RedisServer.Shared.EndPoint,
        Port = 1,
        KeyPrefix = prefix,
    });

    [Fact]
    public void DescribesItsServer() => Assert.Equal($"redis {RedisServer.Shared.EndPoint}/0", First.Description);

    [Fact]
    public async Task ResetLeavesKeysAnUnescapedPatternWouldMatch()
    {
        // Prefix is "…:[*]:"; as a glob, "[*]" would also match any one-character segment.
        var lookalike = Prefix.Replace("[*]", "x", StringComparison.Ordinal) + "kv:k";
        using var raw = await ConnectionMultiplexer.ConnectAsync(RedisServer.Shared.EndPoint);
        var database = raw.GetDatabase();
        await database.StringSetAsync(lookalike, "survivor");
        await First.SetValueAsync("k", "v");
        await First.SetStateAsync(3, InodeStates.Sync, on: true);
        Assert.NotNull(await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));

        try
        {
            await Second.ResetAsync();

            var server = raw.GetServer(RedisServer.Shared.EndPoint);
            var escapedPrefix = Prefix.Replace("[", "\\[", StringComparison.Ordinal).Replace("]", "\\]", StringComparison.Ordinal).Replace("*", "\\*", StringComparison.Ordinal);
            Assert.Empty(server.Keys(pattern: escapedPrefix + "*"));
            Assert.Equal("survivor", (string?)await database.StringGetAsync(lookalike));
        }
        finally
        {
            await database.KeyDeleteAsync(lookalike);
        }
    }

    [Fact]
    public async Task AnUnreachableServerFailsFastAndIsNamed()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CoordinatorException>(() => RedisCoordinator.ConnectAsync(new RedisOptions
        {
            Host = "127.0.0.1",
            Port = port,
            KeyPrefix = Prefix,
            ConnectTimeout = ShortTimeout,
        }));

        Assert.Contains("Redis", error.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task ALiveCoordinatorFailsDuringAnOutageAndRecoversAfter()
    {
        using var server = RedisServer.StartNew();
        await using var coordinator = await RedisCoordinator.ConnectAsync(new RedisOptions
        {
            Host = server.Host,
            Port = server.Port,
            KeyPrefix = Prefix,
            ConnectTimeout = ShortTimeout,
            OperationTimeout = ShortTimeout,
        });
        var inbox = new Inbox();
        await using var subscription = await coordinator.SubscribeAsync("inval", inbox.Add);
        await coordinator.SetValueAsync("k", "before");

        server.Stop();

        foreach (var operation in new Func<Task>[]
        {
            () => coordinator.GetValueAsync("k").AsTask(),
            () => coordinator.SetStateAsync(1, InodeStates.Read, on: true).AsTask(),
            () => coordinator.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)).AsTask(),
            () => coordinator.PublishAsync("inval", "lost").AsTask(),
            () => coordinator.ResetAsync().AsTask(),
        })
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<CoordinatorException>(operation);
            Assert.Contains(server.EndPoint, error.Message, StringComparison.Ordinal);
            Assert.True(clock.Elapsed < ShortTimeout * 3, $"took {clock.Elapsed}");
        }

        server.Start();

        await WaitUntilAsync(async () =>
        {
            try
            {
                await coordinator.SetValueAsync("k", "after");
                return true;
            }
            catch (CoordinatorException)
            {
                return false;
            }
        });
        Assert.Equal("after", await coordinator.GetValueAsync("k"));
        await using (var lease = await coordinator.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)))
            Assert.NotNull(lease);
        // The subscription made before the outage is renewed on the new connection.
        await WaitUntilAsync(async () =>
        {
            await coordinator.PublishAsync("inval", "after");
            return !inbox.IsEmpty;
        });
        Assert.Equal("after", await inbox.NextAsync());
    }

    [Fact]
    public async Task AHungServerFailsOperationsWithinTheTimeoutAndRecovers()
    {
        using var server = RedisServer.StartNew();
        await using var coordinator = await RedisCoordinator.ConnectAsync(new RedisOptions
        {
            Host = server.Host,
            Port = server.Port,
            KeyPrefix = Prefix,
            OperationTimeout = ShortTimeout,
        });
        await coordinator.SetValueAsync("k", "v");

        // The connection stays open, so only the coordinator's own timeout can end the wait.
        server.Freeze();
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<CoordinatorException>(async () => await coordinator.GetValueAsync("k"));
        Assert.InRange(clock.Elapsed, ShortTimeout * 0.9, ShortTimeout * 3);
        Assert.Contains(server.EndPoint, error.Message, StringComparison.Ordinal);
        // Says that the command went out and the server kept quiet, not that it never left.
        Assert.Matches("commands not yet sent 0, sent and unanswered [1-9]", error.Message);

        server.Thaw();
        Assert.Equal("v", await coordinator.GetValueAsync("k"));
    }

    [Fact]
    public async Task AnEmptyPrefixIsRefused()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => RedisCoordinator.ConnectAsync(new RedisOptions { Host = RedisServer.Shared.EndPoint }));
    }
}
