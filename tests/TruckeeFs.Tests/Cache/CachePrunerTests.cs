using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using TruckeeFs.Cache;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// <see cref="CachePruner"/> on a cache filled from the Tahoe test gateway: least recently read
/// first, the byte budget, the TTL, the minimum of free space, pins, and the early cycle a
/// download over budget starts.
/// </summary>
public sealed class CachePrunerTests : IAsyncLifetime
{
    private const int BlockLength = 100_000;
    private readonly TempDirectory _directory = TempDirectory.Create("cache-pruner");
    private readonly VfsStatistics _statistics = new(() => 0);
    private TahoeTestGateway _gateway = null!;
    private TahoeContentStore _store = null!;
    private BlockCache _cache = null!;
    private readonly List<string> _caps = [];

    public async Task InitializeAsync()
    {
        _gateway = await TahoeTestGateway.StartAsync();
        _store = new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(10) });
        _cache = new BlockCache(_store, _directory.Path, 4, _statistics);
        var staging = Directory.CreateDirectory(Path.Combine(_directory.Path, "upload")).FullName;
        for (var i = 0; i < 5; i++)
        {
            var path = Path.Combine(staging, $"{i}");
            var data = new byte[BlockLength];
            new Random(i).NextBytes(data);
            await File.WriteAllBytesAsync(path, data);
            _caps.Add(await _store.PutAsync(path));
        }
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _gateway.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task The_budget_evicts_the_least_recently_read_blocks_first()
    {
        await CacheAllAsync();
        // Block i was last read i hours ago.
        for (var i = 0; i < _caps.Count; i++) SetLastRead(i, TimeSpan.FromHours(i));
        var pruner = Pruner(new CacheOptions { SizeBudget = 2 * BlockLength + 10, Ttl = TimeSpan.Zero, MinFree = 0 });

        var result = pruner.Prune();

        Assert.Equal(new PruneResult(3, 3 * BlockLength, 2 * BlockLength), result);
        Assert.Equal([true, true, false, false, false], Cached());
        Assert.Equal(2 * BlockLength, _statistics.Snapshot().CachedBytes);
    }

    [Fact]
    public async Task Reading_a_cached_block_makes_it_recent()
    {
        await CacheAllAsync();
        for (var i = 0; i < _caps.Count; i++) SetLastRead(i, TimeSpan.FromHours(i));
        using (_cache.Open(_caps[4], BlockLength)) { }

        Pruner(new CacheOptions { SizeBudget = 2 * BlockLength, Ttl = TimeSpan.Zero, MinFree = 0 }).Prune();

        Assert.Equal([true, false, false, false, true], Cached());
    }

    [Fact]
    public async Task Pinned_blocks_stay_whatever_the_budget_until_unpinned()
    {
        await CacheAllAsync();
        for (var i = 0; i < _caps.Count; i++) SetLastRead(i, TimeSpan.FromHours(i));
        _cache.Pin(_caps[4]);
        _cache.Pin(_caps[4]);
        _cache.Pin(_caps[3]);
        var pruner = Pruner(new CacheOptions { SizeBudget = 1, Ttl = TimeSpan.Zero, MinFree = 0 });

        pruner.Prune();
        Assert.Equal([false, false, false, true, true], Cached());

        _cache.Unpin(_caps[4]);
        _cache.Unpin(_caps[3]);
        pruner.Prune();
        Assert.Equal([false, false, false, false, true], Cached());
        _cache.Unpin(_caps[4]);
        pruner.Prune();
        Assert.Equal([false, false, false, false, false], Cached());
    }

    [Fact]
    public async Task Blocks_not_read_within_the_ttl_are_evicted_and_staged_files_are_not_looked_at()
    {
        await CacheAllAsync();
        var staged = Path.Combine(Directory.CreateDirectory(Path.Combine(_directory.Path, "staging")).FullName, "7.0");
        await File.WriteAllTextAsync(staged, "changed, not yet stored");
        SetLastRead(1, TimeSpan.FromMinutes(61));
        SetLastRead(3, TimeSpan.FromDays(2));
        SetLastRead(2, TimeSpan.FromMinutes(59));

        var result = Pruner(new CacheOptions { Ttl = TimeSpan.FromHours(1), MinFree = 0 }).Prune();

        Assert.Equal(2, result.Evicted);
        Assert.Equal([true, false, true, false, true], Cached());
        Assert.True(File.Exists(staged));
    }

    [Fact]
    public async Task Too_little_free_disk_space_evicts_every_unpinned_block()
    {
        await CacheAllAsync();
        _cache.Pin(_caps[0]);
        var staged = Path.Combine(Directory.CreateDirectory(Path.Combine(_directory.Path, "staging")).FullName, "7.0");
        await File.WriteAllTextAsync(staged, "changed, not yet stored");

        Pruner(new CacheOptions { MinFree = long.MaxValue / 2, Ttl = TimeSpan.Zero }).Prune();

        Assert.Equal([true, false, false, false, false], Cached());
        Assert.True(File.Exists(staged));
    }

    [Fact]
    public async Task A_download_over_budget_starts_a_cycle_without_waiting_for_the_interval()
    {
        using var pruner = CachePruner.Start(_cache, new CacheOptions { SizeBudget = 2 * BlockLength, Ttl = TimeSpan.Zero, MinFree = 0, Interval = TimeSpan.FromHours(1) },
            NullLogger.Instance)!;
        await CacheAllAsync();
        var waited = Stopwatch.StartNew();
        while (Cached().Count(c => c) > 2)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"the cache still holds {Cached().Count(c => c)} blocks");
            await Task.Delay(20);
        }
    }

    [Fact]
    public void Without_maintenance_no_pruner_runs()
    {
        Assert.Null(CachePruner.Start(_cache, new CacheOptions { Maintenance = false }, NullLogger.Instance));
    }

    /// <summary>A pruner without a thread: the test runs its cycles.</summary>
    private CachePruner Pruner(CacheOptions options) => new(_cache, options, NullLogger.Instance);

    private async Task CacheAllAsync()
    {
        var buffer = new byte[BlockLength];
        foreach (var cap in _caps)
        {
            using var reader = _cache.Open(cap, BlockLength);
            await reader.ReadAsync(0, buffer);
        }
        await BlockCacheTests.WaitForDownloadsAsync(_cache);
    }

    private void SetLastRead(int index, TimeSpan ago) =>
        File.SetLastWriteTimeUtc(BlockPath(index), DateTime.UtcNow - ago);

    private bool[] Cached() => [.. _caps.Select((_, i) => File.Exists(BlockPath(i)))];

    private string BlockPath(int index) => Path.Combine(_cache.BlocksDirectory, BlockCacheTests.FileName(_caps[index]));
}
