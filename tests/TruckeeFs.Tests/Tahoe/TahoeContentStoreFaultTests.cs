using System.Diagnostics;
using System.Net;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// <see cref="TahoeContentStore"/> under injected faults: failing, slow, dropped and vanished
/// gateways, refusals, and the bound on connections. These need the test gateway's fault
/// injection, so they always run against it.
/// </summary>
public sealed class TahoeContentStoreFaultTests : IAsyncLifetime
{
    private readonly string _staging = Path.Combine(Path.GetTempPath(), "truckeefs-tahoe-faults-" + Guid.NewGuid().ToString("N"));
    private TahoeTestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_staging);
        _gateway = await TahoeTestGateway.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        Directory.Delete(_staging, recursive: true);
    }

    [Fact]
    public async Task A_put_succeeds_through_three_503s_and_reads_back_exactly()
    {
        await using var store = Store();
        var data = Bytes(150_000, 1);
        _gateway.Faults.FailNext(3);
        var cap = await store.PutAsync(await Stage(data));
        Assert.Equal(3, _gateway.Counters.FailuresInjected);
        Assert.Equal(4, _gateway.Counters.ByMethod("PUT"));
        Assert.Equal(data, await ReadAll(store, cap, data.Length));
    }

    [Fact]
    public async Task A_download_cut_off_mid_body_is_retried_and_exact()
    {
        await using var store = Store();
        var data = Bytes(300_000, 2);
        var cap = await store.PutAsync(await Stage(data));
        _gateway.Faults.DropNext(1);
        var buffer = new byte[data.Length];
        Assert.Equal(data.Length, await store.ReadAsync(cap, 0, buffer));
        Assert.Equal(data, buffer);
        Assert.Equal(1, _gateway.Counters.ResponsesDropped);
        Assert.Equal(2, _gateway.Counters.ByMethod("GET"));
    }

    [Fact]
    public async Task Random_failures_and_drops_are_absorbed_by_retries()
    {
        await using var store = Store();
        var data = Bytes(100_000, 3);
        var cap = await store.PutAsync(await Stage(data));
        _gateway.Faults.Seed(7);
        _gateway.Faults.FailureFraction = 0.25;
        _gateway.Faults.DropFraction = 0.25;
        for (var i = 0; i < 20; i++)
        {
            var buffer = new byte[5000];
            Assert.Equal(5000, await store.ReadAsync(cap, i * 5000, buffer));
            Assert.Equal(data.AsSpan(i * 5000, 5000).ToArray(), buffer);
        }
        Assert.True(_gateway.Counters.FailuresInjected + _gateway.Counters.ResponsesDropped > 0);
    }

    [Fact]
    public async Task A_gateway_that_is_gone_fails_in_bounded_time_naming_its_url()
    {
        var url = _gateway.BaseUri;
        await using var store = Store(TimeSpan.FromMilliseconds(300));
        var cap = await store.PutAsync(await Stage(Bytes(1000, 4)));
        await _gateway.DisposeAsync();
        var clock = Stopwatch.StartNew();
        var readError = await Assert.ThrowsAsync<ContentStoreException>(async () => await store.ReadAsync(cap, 0, new byte[10]));
        var putError = await Assert.ThrowsAsync<ContentStoreException>(async () => await store.PutAsync(await Stage(Bytes(1000, 5))));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Contains(url.ToString(), readError.Message, StringComparison.Ordinal);
        Assert.Contains(url.ToString(), putError.Message, StringComparison.Ordinal);
        Assert.IsNotType<ContentNotFoundException>(readError);
        _gateway = await TahoeTestGateway.StartAsync();
    }

    [Fact]
    public async Task A_gateway_slower_than_the_timeout_fails_in_bounded_time()
    {
        await using var store = Store(TimeSpan.FromMilliseconds(200));
        var cap = await store.PutAsync(await Stage(Bytes(1000, 6)));
        _gateway.Faults.Latency = TimeSpan.FromSeconds(2);
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<ContentStoreException>(async () => await store.ReadAsync(cap, 0, new byte[10]));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Contains("timeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refusal_surfaces_tahoes_message_without_retrying()
    {
        _gateway.RequiredBearerToken = "secret-token";
        await using var anonymous = Store();
        var error = await Assert.ThrowsAsync<TahoeRequestException>(async () => await anonymous.PutAsync(await Stage(Bytes(1000, 7))));
        Assert.Equal(HttpStatusCode.Unauthorized, error.Status);
        Assert.Contains("Unauthorized", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-token", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _gateway.Counters.Requests);

        await using var authorized = new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.BaseUri, AuthToken = "secret-token" });
        var data = Bytes(1000, 8);
        Assert.Equal(data, await ReadAll(authorized, await authorized.PutAsync(await Stage(data)), data.Length));
    }

    [Fact]
    public async Task A_lost_file_is_not_found()
    {
        await using var store = Store();
        var cap = await store.PutAsync(await Stage(Bytes(1000, 9)));
        _gateway.DeleteShares(cap, sharesToKeep: 0);
        await Assert.ThrowsAsync<ContentNotFoundException>(async () => await store.ReadAsync(cap, 0, new byte[10]));
    }

    [Fact]
    public async Task Parallel_reads_never_exceed_max_connections()
    {
        await using var store = new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.BaseUri, MaxConnections = 3 });
        var data = Bytes(50_000, 10);
        var cap = await store.PutAsync(await Stage(data));
        _gateway.Faults.Latency = TimeSpan.FromMilliseconds(50);
        _gateway.Counters.ResetMaxInFlight();
        await Task.WhenAll(Enumerable.Range(0, 24).Select(async i =>
        {
            var buffer = new byte[1000];
            Assert.Equal(1000, await store.ReadAsync(cap, i * 1000, buffer));
            Assert.Equal(data.AsSpan(i * 1000, 1000).ToArray(), buffer);
        }));
        Assert.Equal(3, _gateway.Counters.MaxInFlight);
    }

    [Fact]
    public async Task Reads_ask_only_for_the_bytes_wanted()
    {
        await using var store = Store();
        var data = Bytes(1 << 20, 11);
        var cap = await store.PutAsync(await Stage(data));
        var buffer = new byte[10];
        Assert.Equal(10, await store.ReadAsync(cap, 500_000, buffer));
        Assert.Equal(data.AsSpan(500_000, 10).ToArray(), buffer);
        Assert.Equal(10, _gateway.Counters.BytesDownloaded);
        // Past the end a CHK cap's own size answers, without a request.
        var requests = _gateway.Counters.Requests;
        Assert.Equal(0, await store.ReadAsync(cap, 1 << 20, buffer));
        Assert.Equal(requests, _gateway.Counters.Requests);
    }

    [Fact]
    public async Task A_whole_file_sent_instead_of_a_range_still_gives_the_slice()
    {
        await using var store = Store();
        var data = Bytes(200_000, 13);
        var cap = await store.PutAsync(await Stage(data));
        _gateway.Faults.IgnoreRanges = true;
        var buffer = new byte[1000];
        Assert.Equal(1000, await store.ReadAsync(cap, 150_000, buffer));
        Assert.Equal(data.AsSpan(150_000, 1000).ToArray(), buffer);
        // The gateway counts a body once it has finished sending it, which may be just after
        // the client has its slice.
        for (var waited = 0; _gateway.Counters.BytesDownloaded < data.Length && waited < 5000; waited += 20) await Task.Delay(20);
        Assert.Equal(data.Length, _gateway.Counters.BytesDownloaded);
    }

    [Fact]
    public async Task Literal_caps_never_reach_the_gateway()
    {
        await using var store = Store();
        var data = Bytes(55, 12);
        var cap = await store.PutAsync(await Stage(data));
        Assert.Equal(TahoeCaps.LiteralCap(data), cap);
        Assert.Equal(data, await ReadAll(store, cap, 55));
        Assert.Equal(0, _gateway.Counters.Requests);
    }

    private TahoeContentStore Store(TimeSpan? timeout = null) =>
        new(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = timeout ?? TimeSpan.FromSeconds(5) });

    private async Task<string> Stage(byte[] data)
    {
        var path = Path.Combine(_staging, Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(path, data);
        return path;
    }

    private static byte[] Bytes(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task<byte[]> ReadAll(IContentStore store, string cap, int size)
    {
        var buffer = new byte[size];
        Assert.Equal(size, await store.ReadAsync(cap, 0, buffer));
        return buffer;
    }
}
