using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using TruckeeFs.Cache;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// The read path and the cache pruner through a real mount on MariaDB, Redis and the Tahoe test
/// gateway (with injected latency and paced downloads): files are written by one mount and read
/// by another with an empty cache, so every block comes from Tahoe.
/// </summary>
public sealed class ReadPathMountTests : IAsyncLifetime
{
    private const int MiB = 1 << 20;
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync(faults: true);

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    private TahoeTestGateway Gateway => _fs.Gateway!;

    /// <summary>A mount with an empty cache of its own, so that every block it reads comes from Tahoe; disposing it unmounts and deletes the cache.</summary>
    private async Task<ColdMount> ColdMountAsync(string cacheName, params string[] extra)
    {
        var cache = TempDirectory.Create(cacheName);
        try
        {
            return new ColdMount(await TruckeeFsMount.StartAsync(Options(cache.Path, extra)), cache);
        }
        catch
        {
            cache.Dispose();
            throw;
        }
    }

    private sealed class ColdMount(TruckeeFsMount mount, TempDirectory cache) : IAsyncDisposable
    {
        public TruckeeFsMount Mount => mount;

        public string CachePath => cache.Path;

        public async ValueTask DisposeAsync()
        {
            await mount.DisposeAsync();
            cache.Dispose();
        }
    }

    [Fact]
    public async Task The_first_byte_of_an_uncached_64_MiB_file_arrives_before_the_file_is_downloaded()
    {
        var data = RandomBytes(64 * MiB, seed: 1);
        await WriteFilesAsync(("big", data));

        await using var cold = await ColdMountAsync("read-first-byte");
        var mount = cold.Mount;
        Gateway.Faults.Latency = TimeSpan.FromMilliseconds(20);
        // 16 MiB/s per download: the whole file takes seconds however many run at once.
        Gateway.Faults.DownloadBytesPerSecond = 16 * MiB;
        var before = Gateway.Counters.BytesDownloaded;
        var clock = Stopwatch.StartNew();
        using (var handle = File.OpenHandle(Path.Combine(mount.Path, "big")))
        {
            var first = new byte[1];
            Assert.Equal(1, RandomAccess.Read(handle, first, 0));
            var elapsed = clock.Elapsed;
            var downloaded = Gateway.Counters.BytesDownloaded - before;
            Assert.Equal(data[0], first[0]);
            Assert.True(downloaded < 16 * MiB, $"{downloaded} bytes were downloaded before the first byte was read");
            Assert.True(elapsed < TimeSpan.FromSeconds(2), $"the first byte took {elapsed}");

            Assert.Equal(data, ReadAll(handle, data.Length));
        }
        // Every byte came once, whatever the readahead did.
        Assert.Equal(data.Length, Gateway.Counters.BytesDownloaded - before);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Sequential_reads_fetch_the_next_blocks_ahead_in_parallel()
    {
        var data = RandomBytes(32 * MiB, seed: 2);
        await WriteFilesAsync(("seq", data));

        await using var cold = await ColdMountAsync("read-ahead");
        var mount = cold.Mount;
        Gateway.Faults.Latency = TimeSpan.FromMilliseconds(100);
        var downloadsBefore = Gateway.Counters.Downloads;
        Gateway.Counters.ResetMaxInFlight();
        using (var handle = File.OpenHandle(Path.Combine(mount.Path, "seq")))
        {
            // Only the first of eight blocks is read: three megabytes of it, so that the mount
            // sees at least three sequential reads (the kernel asks for at most 1 MiB at a time)
            // whatever the kernel's own readahead did meanwhile. Readahead starts one block
            // ahead at the second and two at the third...
            var head = new byte[MiB];
            for (var offset = 0; offset < 3 * MiB; offset += head.Length) Assert.Equal(head.Length, RandomAccess.Read(handle, head, offset));
            // ...and the next ones come without being asked for.
            await WaitUntilAsync(() => Gateway.Counters.Downloads - downloadsBefore >= 3, "blocks after the first were not fetched ahead");
            Assert.Equal(data, ReadAll(handle, data.Length));
        }
        Assert.True(Gateway.Counters.MaxInFlight >= 2, $"at most {Gateway.Counters.MaxInFlight} download ran at once");
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Random_reads_that_land_near_each_other_by_chance_fetch_no_block_ahead()
    {
        var data = RandomBytes(32 * MiB, seed: 5);
        await WriteFilesAsync(("random", data));

        await using var cold = await ColdMountAsync("read-random");
        var mount = cold.Mount;
        var before = Gateway.Counters.BytesDownloaded;
        using (var handle = File.OpenHandle(Path.Combine(mount.Path, "random")))
        {
            // Pages in blocks 2, 2 again (half a megabyte on), 5 and 0, as a random reader may ask.
            var page = new byte[4096];
            foreach (var offset in new[] { 9 * MiB, 9 * MiB + MiB / 2, 21 * MiB, 2 * MiB })
            {
                Assert.Equal(page.Length, RandomAccess.Read(handle, page, offset));
                Assert.Equal(data[offset..(offset + page.Length)], page);
            }
            // Whatever was started ahead has had time to come.
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        Assert.Equal(3 * 4L * MiB, Gateway.Counters.BytesDownloaded - before);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Two_readers_of_the_same_uncached_blocks_cause_one_download_each()
    {
        // Identical contents make identical (convergent) caps: two files, one set of blocks.
        var data = RandomBytes(16 * MiB, seed: 3);
        await WriteFilesAsync(("one", data), ("two", data));
        Assert.Equal(4, _fs.Count("SELECT COUNT(DISTINCT cap) FROM blocks"));

        await using var cold = await ColdMountAsync("read-shared");
        var mount = cold.Mount;
        Gateway.Faults.Latency = TimeSpan.FromMilliseconds(50);
        Gateway.Faults.DownloadBytesPerSecond = 32 * MiB;
        var before = (Gateway.Counters.Downloads, Gateway.Counters.BytesDownloaded);
        using var start = new Barrier(2);
        var readers = new[] { "one", "two" }.Select(name => Task.Run(() =>
        {
            using var handle = File.OpenHandle(Path.Combine(mount.Path, name));
            start.SignalAndWait();
            return ReadAll(handle, data.Length);
        })).ToArray();
        foreach (var read in await Task.WhenAll(readers)) Assert.Equal(data, read);

        Assert.Equal(16 * MiB, Gateway.Counters.BytesDownloaded - before.BytesDownloaded);
        Assert.Equal(4, Gateway.Counters.Downloads - before.Downloads);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task The_pruner_keeps_the_budget_but_never_evicts_blocks_of_an_open_file()
    {
        var data = RandomBytes(16 * MiB, seed: 4);
        await WriteFilesAsync(("kept", data));

        await using var cold = await ColdMountAsync("prune-budget", "--cache-size", "4m", "--cache-min-free", "0", "--sleep", "0.3");
        var mount = cold.Mount;
        using (var handle = File.OpenHandle(Path.Combine(mount.Path, "kept")))
        {
            Assert.Equal(data, ReadAll(handle, data.Length));
            // Several pruner cycles pass while the file is open: all its blocks stay.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            Assert.Equal(16 * MiB, CachedBytes(cold.CachePath));
        }
        await WaitUntilAsync(() => CachedBytes(cold.CachePath) <= 4 * MiB, "the cache stayed over its 4 MiB budget after the file was closed");
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task An_open_file_pins_only_the_blocks_it_reads_lately_so_reading_through_a_big_one_stays_bounded()
    {
        const int BlockSize = 64 << 10;
        // Twice as many blocks as an open file keeps readers of.
        var data = RandomBytes(2 * FileContent.MaxCleanHandles * BlockSize, seed: 7);
        await WriteFilesAsync(["--block-size", "64k"], ("long", data));

        await using var cold = await ColdMountAsync("prune-long", "--block-size", "64k", "--cache-size", "256k", "--cache-min-free", "0", "--sleep", "0.2");
        var mount = cold.Mount;
        using (var handle = File.OpenHandle(Path.Combine(mount.Path, "long")))
        {
            Assert.Equal(data, ReadAll(handle, data.Length));
            // The blocks read last stay (with up to 20 fetched ahead: 2 x max_connections); the others may go.
            await WaitUntilAsync(() => CachedBytes(cold.CachePath) <= (FileContent.MaxCleanHandles + 20) * BlockSize, "the open file kept every block it ever read");
            Assert.True(CachedBytes(cold.CachePath) >= FileContent.MaxCleanHandles * BlockSize, $"only {CachedBytes(cold.CachePath)} bytes of the blocks in use stayed");
        }
        await WaitUntilAsync(() => CachedBytes(cold.CachePath) <= 256 << 10, "the cache stayed over its budget after the file was closed");
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Blocks_are_evicted_after_the_ttl_once_their_file_is_closed()
    {
        var data = RandomBytes(8 * MiB, seed: 5);
        await WriteFilesAsync(("aging", data));

        await using var cold = await ColdMountAsync("prune-ttl", "--cache-ttl", "1", "--cache-min-free", "0", "--sleep", "0.3");
        var mount = cold.Mount;
        using (var handle = File.OpenHandle(Path.Combine(mount.Path, "aging")))
        {
            Assert.Equal(data, ReadAll(handle, data.Length));
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal(8 * MiB, CachedBytes(cold.CachePath));
        }
        await WaitUntilAsync(() => CachedBytes(cold.CachePath) == 0, "blocks outlived their TTL");
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Staged_changes_are_never_pruned()
    {
        var data = RandomBytes(8 * MiB, seed: 6);
        using var cache = TempDirectory.Create("prune-staged");
        // No free space is ever enough: the pruner evicts everything it may, every 0.2 s.
        await using (var mount = await TruckeeFsMount.StartAsync(Options(cache.Path, "--cache-min-free", "1000t", "--sleep", "0.2")))
        {
            // The gateway refuses every upload, so what is written stays staged whether the file
            // is open or closed: any fork and exec in this test process closes an inherited copy
            // of the descriptor, and that close flushes the file, as POSIX says it must.
            Gateway.Faults.FailureFraction = 1;
            var path = Path.Combine(mount.Path, "staged");
            using (var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
            {
                RandomAccess.Write(handle, data.AsSpan(0, 4 * MiB), 0);
                await Task.Delay(TimeSpan.FromSeconds(1));
                Assert.True(Staged(cache.Path) > 0, $"nothing staged while open; truckeefs said: {mount.Output}");
                RandomAccess.Write(handle, data.AsSpan(4 * MiB), 4 * MiB);
            }
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.True(Staged(cache.Path) > 0, $"nothing staged after the close; truckeefs said: {mount.Output}");
            Assert.Equal(data, await File.ReadAllBytesAsync(path));
            Gateway.Faults.Clear();
            Assert.Equal(0, await mount.UnmountAsync());
        }
        using var fresh = TempDirectory.Create("prune-staged-read");
        await using var again = await TruckeeFsMount.StartAsync(Options(fresh.Path));
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(again.Path, "staged")));
        Assert.Equal(0, await again.UnmountAsync());
    }

    /// <summary>Files in a cache's staging folder.</summary>
    private static int Staged(string cacheDir) => Directory.GetFiles(Path.Combine(cacheDir, "staging")).Length;

    private TruckeeFsMountOptions Options(string? cacheDir, params string[] extra) => new()
    {
        CacheDir = cacheDir,
        ExtraArgs = [.. _fs.Arguments(), .. extra.Contains("--block-size") ? [] : (string[])["--block-size", "4m"], .. extra],
        Environment = _fs.Secrets(),
    };

    /// <summary>Writes files through a mount of their own, whose cache is then thrown away.</summary>
    private Task WriteFilesAsync(params (string Name, byte[] Data)[] files) => WriteFilesAsync([], files);

    private async Task WriteFilesAsync(string[] extra, params (string Name, byte[] Data)[] files)
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options(null, extra));
        foreach (var (name, data) in files) await File.WriteAllBytesAsync(Path.Combine(mount.Path, name), data);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    private static byte[] ReadAll(SafeFileHandle handle, int length)
    {
        var data = new byte[length];
        var buffer = new byte[MiB];
        for (var offset = 0; offset < length;)
        {
            var n = RandomAccess.Read(handle, buffer, offset);
            Assert.True(n > 0, $"end of file at {offset} of {length}");
            buffer.AsSpan(0, n).CopyTo(data.AsSpan(offset));
            offset += n;
        }
        return data;
    }

    /// <summary>Bytes in the cache's blocks folder; a block the pruner deletes while it is counted counts 0.</summary>
    private static long CachedBytes(string cacheDir) =>
        new DirectoryInfo(Path.Combine(cacheDir, "blocks")).EnumerateFiles().Sum(LengthOrZero);

    private static long LengthOrZero(FileInfo file)
    {
        try
        {
            return file.Length;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        for (var waited = Stopwatch.StartNew(); !condition();)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(15), failure);
            await Task.Delay(20);
        }
    }
}
