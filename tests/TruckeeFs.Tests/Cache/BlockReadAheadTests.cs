using System.Diagnostics;
using TruckeeFs.Cache;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// Readahead of a block already on local disk (a local store's object, or a block the cache
/// holds): there is nothing to download, but the block the reader will reach next is read from
/// disk ahead of need. The directory is on a disk filesystem, where pages can be dropped.
/// </summary>
public sealed class BlockReadAheadTests : IDisposable
{
    private const int BlockLength = 4 << 20;
    private readonly TempDirectory _directory = TempDirectory.CreateWithXattrsAndLinks("block-readahead");

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Prefetch_of_a_local_block_brings_it_into_the_page_cache()
    {
        var store = new LocalContentStore(Path.Combine(_directory.Path, "contents"));
        var cap = await store.PutAsync(await WriteSourceAsync());
        var local = store.LocalPath(cap)!;
        var pages = DropFromPageCache(local);

        var cache = new BlockCache(store, Path.Combine(_directory.Path, "cache"), 4, new VfsStatistics(() => 0));
        Assert.True(cache.Prefetch(cap, BlockLength));

        await WaitUntilResidentAsync(local, pages);
    }

    [Fact]
    public async Task Prefetch_of_a_cached_block_brings_it_into_the_page_cache_even_while_downloads_fill_every_place()
    {
        await using var gateway = await TahoeTestGateway.StartAsync();
        await using var store = new TahoeContentStore(new TahoeOptions { TahoeUrl = gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(10) });
        var cap = await store.PutAsync(await WriteSourceAsync());
        var other = await store.PutAsync(await WriteSourceAsync(seed: 2));
        var third = await store.PutAsync(await WriteSourceAsync(seed: 3));
        var cache = new BlockCache(store, Path.Combine(_directory.Path, "cache"), readAhead: 1, new VfsStatistics(() => 0));
        using (var reader = cache.Open(cap, BlockLength))
            Assert.Equal(BlockLength, await reader.ReadAsync(0, new byte[BlockLength]));
        await BlockCacheTests.WaitForDownloadsAsync(cache);
        var cached = Path.Combine(cache.BlocksDirectory, BlockCacheTests.FileName(cap));
        var pages = DropFromPageCache(cached);
        // The one download place is taken by a slow download of another block.
        gateway.Faults.Latency = TimeSpan.FromSeconds(2);
        Assert.True(cache.Prefetch(other, BlockLength));
        Assert.False(cache.Prefetch(third, BlockLength), "the download limit holds for uncached blocks");
        var downloads = gateway.Counters.Downloads;

        Assert.True(cache.Prefetch(cap, BlockLength));

        await WaitUntilResidentAsync(cached, pages);
        Assert.Equal(downloads, gateway.Counters.Downloads);
    }

    private async Task<string> WriteSourceAsync(int seed = 1)
    {
        var source = Path.Combine(_directory.Path, $"source-{seed}");
        var data = new byte[BlockLength];
        new Random(seed).NextBytes(data);
        await File.WriteAllBytesAsync(source, data);
        return source;
    }

    /// <summary>Evicts the file's pages; returns how many it has.</summary>
    private static long DropFromPageCache(string path)
    {
        Assert.Equal(0, Sys.DropFromPageCache(path));
        Assert.Equal(0, Sys.ResidentPages(path, out var resident, out var pages));
        Assert.True(resident < pages / 4, $"{resident} of {pages} pages still cached after POSIX_FADV_DONTNEED");
        return pages;
    }

    private static async Task WaitUntilResidentAsync(string path, long pages)
    {
        long resident = 0;
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(20))
        {
            Assert.Equal(0, Sys.ResidentPages(path, out resident, out _));
            if (resident == pages) break;
        }
        Assert.Equal(pages, resident);
    }
}
