using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TruckeeFs.Cache;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// <see cref="BlockCache"/> over a Tahoe store on the test gateway: shared downloads, readers
/// that wait only for their own bytes, ranged starts deep in a block, crash leftovers, retries.
/// </summary>
public sealed class BlockCacheTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = TempDirectory.Create("block-cache");
    private readonly VfsStatistics _statistics = new(() => 0);
    private TahoeTestGateway _gateway = null!;
    private TahoeContentStore _store = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TahoeTestGateway.StartAsync();
        _store = new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(10) });
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _gateway.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task Two_readers_of_an_uncached_block_share_one_download()
    {
        var (cap, data) = await PutAsync(1 << 20, seed: 1);
        var cache = NewCache();
        _gateway.Faults.Latency = TimeSpan.FromMilliseconds(100);
        var before = _gateway.Counters.Downloads;

        using var first = cache.Open(cap, data.Length);
        using var second = cache.Open(cap, data.Length);
        var a = new byte[data.Length];
        var b = new byte[data.Length];
        var reads = await Task.WhenAll(first.ReadAsync(0, a).AsTask(), second.ReadAsync(0, b).AsTask());

        Assert.Equal([data.Length, data.Length], reads);
        Assert.Equal(data, a);
        Assert.Equal(data, b);
        Assert.Equal(1, _gateway.Counters.Downloads - before);
        await WaitForDownloadsAsync(cache);
        using var third = cache.Open(cap, data.Length);
        Assert.Equal(data.Length, await third.ReadAsync(0, a));
        Assert.Equal(data, a);
        Assert.Equal(1, _gateway.Counters.Downloads - before);
        var counts = _statistics.Snapshot();
        Assert.Equal((2L, 1L), (counts.CacheMisses, counts.CacheHits));
        Assert.Equal(data.Length, counts.BytesDownloaded);
        Assert.Equal(data.Length, counts.CachedBytes);
    }

    [Fact]
    public async Task The_first_bytes_of_a_block_are_read_before_the_rest_has_arrived()
    {
        var (cap, data) = await PutAsync(1 << 20, seed: 2);
        var cache = NewCache();
        // The block takes two seconds to arrive.
        _gateway.Faults.DownloadBytesPerSecond = 512 << 10;
        var clock = Stopwatch.StartNew();
        using var reader = cache.Open(cap, data.Length);
        var head = new byte[4096];
        Assert.Equal(head.Length, await reader.ReadAsync(0, head));
        var headTime = clock.Elapsed;
        Assert.True(_gateway.Counters.BytesDownloaded < data.Length / 2, $"{_gateway.Counters.BytesDownloaded} bytes had arrived before the first 4 KiB were read");
        Assert.True(headTime < TimeSpan.FromSeconds(1), $"the first 4 KiB took {headTime}");
        Assert.Equal(data.AsSpan(0, head.Length).ToArray(), head);

        var tail = new byte[4096];
        Assert.Equal(tail.Length, await reader.ReadAsync(data.Length - tail.Length, tail));
        Assert.Equal(data.AsSpan(data.Length - tail.Length).ToArray(), tail);
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1.5), "the tail cannot come before the body is sent");
    }

    [Fact]
    public async Task A_first_read_deep_in_a_block_starts_its_download_there()
    {
        var (cap, data) = await PutAsync(2 << 20, seed: 3);
        var cache = NewCache();
        _gateway.Faults.DownloadBytesPerSecond = 512 << 10;
        var offset = (3 << 20) / 2 + 1000;
        var clock = Stopwatch.StartNew();
        using var reader = cache.Open(cap, data.Length, firstNeeded: offset);
        var buffer = new byte[4096];
        Assert.Equal(buffer.Length, await reader.ReadAsync(offset, buffer));
        // From the start, 1.5 MiB at 512 KiB/s would take three seconds.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"a read at 1.5 MiB took {clock.Elapsed}");
        Assert.Equal(data.AsSpan(offset, buffer.Length).ToArray(), buffer);

        // The head comes in a second stream at the same time; together they make the whole block.
        var all = new byte[data.Length];
        Assert.Equal(data.Length, await reader.ReadAsync(0, all));
        Assert.Equal(data, all);
        Assert.Equal(2, _gateway.Counters.Downloads);
        await WaitForDownloadsAsync(cache);
        Assert.Equal(data.Length, new FileInfo(Path.Combine(cache.BlocksDirectory, FileName(cap))).Length);
    }

    [Fact]
    public async Task Leftovers_of_a_crash_are_never_taken_for_complete_blocks()
    {
        var (cap, data) = await PutAsync(300_000, seed: 4);
        var blocks = Directory.CreateDirectory(Path.Combine(_directory.Path, "blocks")).FullName;
        // A download cut short by a crash, and a block file that lost its tail with the machine.
        var part = Path.Combine(blocks, FileName(cap) + ".0123456789abcdef.part");
        await File.WriteAllBytesAsync(part, data.AsSpan(0, 1000).ToArray());
        await File.WriteAllBytesAsync(Path.Combine(blocks, FileName(cap)), data.AsSpan(0, 200_000).ToArray());

        var cache = NewCache();
        Assert.False(File.Exists(part));
        using var reader = cache.Open(cap, data.Length);
        var buffer = new byte[data.Length];
        Assert.Equal(data.Length, await reader.ReadAsync(0, buffer));
        Assert.Equal(data, buffer);
        Assert.Equal(1, _gateway.Counters.Downloads);
        await WaitForDownloadsAsync(cache);
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(blocks, FileName(cap))));
    }

    [Fact]
    public async Task A_failed_download_fails_its_readers_and_the_next_open_tries_again()
    {
        var (cap, data) = await PutAsync(200_000, seed: 5);
        await using var impatient = new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = TimeSpan.FromMilliseconds(300) });
        var cache = new BlockCache(impatient, _directory.Path, 4, _statistics);
        _gateway.Faults.FailNext(1000);
        using (var failing = cache.Open(cap, data.Length))
            await Assert.ThrowsAnyAsync<ContentStoreException>(async () => await failing.ReadAsync(0, new byte[100]));
        await WaitForDownloadsAsync(cache);
        Assert.Empty(Directory.GetFiles(cache.BlocksDirectory));

        _gateway.Faults.Clear();
        using var reader = cache.Open(cap, data.Length);
        var buffer = new byte[data.Length];
        Assert.Equal(data.Length, await reader.ReadAsync(0, buffer));
        Assert.Equal(data, buffer);
    }

    [Fact]
    public async Task A_download_cut_off_midway_resumes_and_every_byte_arrives_once()
    {
        var (cap, data) = await PutAsync(1 << 20, seed: 6);
        var cache = NewCache();
        _gateway.Faults.DropNext(1);
        using var reader = cache.Open(cap, data.Length);
        var buffer = new byte[data.Length];
        Assert.Equal(data.Length, await reader.ReadAsync(0, buffer));
        Assert.Equal(data, buffer);
        Assert.Equal(1, _gateway.Counters.ResponsesDropped);
        Assert.Equal(data.Length, _statistics.Snapshot().BytesDownloaded);
    }

    [Fact]
    public async Task A_gateway_that_ignores_ranges_still_fills_a_block_started_deep_inside()
    {
        var (cap, data) = await PutAsync(1 << 20, seed: 7);
        var cache = NewCache();
        _gateway.Faults.IgnoreRanges = true;
        using var reader = cache.Open(cap, data.Length, firstNeeded: 700_000);
        var buffer = new byte[data.Length];
        Assert.Equal(data.Length, await reader.ReadAsync(0, buffer));
        Assert.Equal(data, buffer);
        await WaitForDownloadsAsync(cache);
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(cache.BlocksDirectory, FileName(cap))));
    }

    [Fact]
    public async Task Prefetch_stops_at_the_download_limit_and_skips_cached_blocks()
    {
        var caps = new List<(string Cap, byte[] Data)>();
        for (var i = 0; i < 4; i++) caps.Add(await PutAsync(100_000, seed: 10 + i));
        var cache = new BlockCache(_store, _directory.Path, 2, _statistics);
        _gateway.Faults.Latency = TimeSpan.FromMilliseconds(300);
        Assert.True(cache.Prefetch(caps[0].Cap, 100_000));
        Assert.True(cache.Prefetch(caps[1].Cap, 100_000));
        Assert.True(cache.Prefetch(caps[0].Cap, 100_000), "a block already coming counts as fetched");
        Assert.False(cache.Prefetch(caps[2].Cap, 100_000), "two downloads are the limit");
        Assert.Equal(2, cache.DownloadsInFlight);
        await WaitForDownloadsAsync(cache);
        Assert.True(cache.Prefetch(caps[0].Cap, 100_000));
        Assert.Equal(0, cache.DownloadsInFlight);
        Assert.Equal(2, _gateway.Counters.Downloads);
    }

    private BlockCache NewCache() => new(_store, _directory.Path, 4, _statistics);

    private async Task<(string Cap, byte[] Data)> PutAsync(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        var path = Path.Combine(_directory.Path, $"upload-{seed}");
        await File.WriteAllBytesAsync(path, data);
        var cap = await _store.PutAsync(path);
        File.Delete(path);
        return (cap, data);
    }

    internal static string FileName(string cap) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(cap)));

    internal static async Task WaitForDownloadsAsync(BlockCache cache)
    {
        for (var waited = Stopwatch.StartNew(); cache.DownloadsInFlight > 0;)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "downloads did not finish");
            await Task.Delay(10);
        }
    }
}
