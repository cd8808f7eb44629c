using System.Diagnostics;
using TruckeeFs.Cache;
using TruckeeFs.Content;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// Readahead on the local content store: there is nothing to download, but a block the reader
/// will reach next is read from disk ahead of need.
/// </summary>
public sealed class LocalBlockReadAheadTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.CreateWithXattrsAndLinks("local-readahead");

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Prefetch_of_a_local_block_brings_it_into_the_page_cache()
    {
        var store = new LocalContentStore(Path.Combine(_directory.Path, "contents"));
        var source = Path.Combine(_directory.Path, "source");
        await File.WriteAllBytesAsync(source, new byte[4 << 20].Select((_, i) => (byte)(i * 7)).ToArray());
        var cap = await store.PutAsync(source);
        var local = store.LocalPath(cap)!;
        Assert.Equal(0, Sys.DropFromPageCache(local));
        Assert.Equal(0, Sys.ResidentPages(local, out var before, out var pages));
        Assert.True(before < pages / 4, $"{before} of {pages} pages still cached after POSIX_FADV_DONTNEED");

        var cache = new BlockCache(store, Path.Combine(_directory.Path, "cache"), 4, new VfsStatistics(() => 0));
        Assert.True(cache.Prefetch(cap, 4 << 20));

        long resident = 0;
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(20))
        {
            Assert.Equal(0, Sys.ResidentPages(local, out resident, out _));
            if (resident == pages) break;
        }
        Assert.Equal(pages, resident);
    }
}
