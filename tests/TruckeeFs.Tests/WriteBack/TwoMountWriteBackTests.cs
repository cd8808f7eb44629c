using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.WriteBack;

/// <summary>
/// Two mounts of one filesystem on MariaDB, Redis and the Tahoe test gateway (separate
/// processes and caches): close-to-open while the closing mount's upload is still pending, and
/// concurrent writers that must leave one complete version.
/// </summary>
public sealed class TwoMountWriteBackTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync(faults: true);

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task An_open_on_another_mount_sees_the_closed_contents_while_the_upload_is_pending()
    {
        await using var a = await TruckeeFsMount.StartAsync(_fs.Options());
        await using var b = await TruckeeFsMount.StartAsync(_fs.Options(extra: ["-v"]));
        var old = RandomNumberGenerator.GetBytes(2 * Block);
        await File.WriteAllBytesAsync($"{a.Path}/shared", old);
        TahoeBackedFilesystem.Fsync($"{a.Path}/shared");
        // B reads the old version into its page cache.
        Assert.Equal(old, await File.ReadAllBytesAsync($"{b.Path}/shared"));

        var gateway = _fs.Gateway!;
        gateway.Faults.Latency = TimeSpan.FromSeconds(2);
        var uploads = gateway.Counters.Uploads;
        // Same size: only the contents tell the versions apart.
        var changed = RandomNumberGenerator.GetBytes(2 * Block);
        var clock = Stopwatch.StartNew();
        await File.WriteAllBytesAsync($"{a.Path}/shared", changed);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"the close on A took {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(uploads, gateway.Counters.Uploads);

        // B's open waits for A's commit to land, and B's page cache of the old version is dropped.
        Assert.Equal(changed, await File.ReadAllBytesAsync($"{b.Path}/shared"));
        Assert.True(gateway.Counters.Uploads - uploads >= 2, "B opened before A's blocks were stored");
        Assert.Contains("pending commit", b.Output, StringComparison.Ordinal);
        gateway.Faults.Clear();
        Assert.Equal(0, await a.UnmountAsync());
        Assert.Equal(0, await b.UnmountAsync());
    }

    [Fact]
    public async Task An_open_drops_the_kernel_page_cache_of_contents_another_mount_changed_with_size_and_mtime_kept()
    {
        await using var a = await TruckeeFsMount.StartAsync(_fs.Options());
        await using var b = await TruckeeFsMount.StartAsync(_fs.Options());
        var old = RandomNumberGenerator.GetBytes(2 * Block);
        await File.WriteAllBytesAsync($"{a.Path}/same", old);
        TahoeBackedFilesystem.Fsync($"{a.Path}/same");
        Assert.Equal(0, Sys.Stat($"{a.Path}/same", out var before));
        Assert.Equal(old, await File.ReadAllBytesAsync($"{b.Path}/same"));
        // B's kernel keeps the pages of a file it reopens unchanged (nothing here can tell) ...
        Assert.Equal(old, await File.ReadAllBytesAsync($"{b.Path}/same"));

        // ... but once A committed new contents of the same size and mtime (the kernel's own
        // check, AUTO_INVAL_DATA, sees nothing), B's next open must not serve the old pages.
        var changed = RandomNumberGenerator.GetBytes(2 * Block);
        await File.WriteAllBytesAsync($"{a.Path}/same", changed);
        Assert.Equal(0, Sys.Utimensat($"{a.Path}/same", Timespec.FromNanoseconds(before.AtimeNs), Timespec.FromNanoseconds(before.MtimeNs)));
        Assert.Equal(changed, await File.ReadAllBytesAsync($"{b.Path}/same"));
        Assert.Equal(0, Sys.Stat($"{b.Path}/same", out var after));
        Assert.Equal((before.Size, before.MtimeNs), (after.Size, after.MtimeNs));
        Assert.Equal(0, await a.UnmountAsync());
        Assert.Equal(0, await b.UnmountAsync());
    }

    [Fact]
    public async Task A_killed_mount_holds_up_no_open_elsewhere_and_its_closed_version_lands_when_it_returns()
    {
        string[] sessions = ["--session-heartbeat", "0.5", "--session-timeout", "2", "--commit-wait-timeout", "60"];
        using var cacheA = TempDirectory.Create("killed-cache");
        var old = RandomNumberGenerator.GetBytes(2 * Block);
        var changed = RandomNumberGenerator.GetBytes(2 * Block);
        await using var b = await TruckeeFsMount.StartAsync(_fs.Options(extra: sessions));
        await using (var a = await TruckeeFsMount.StartAsync(_fs.Options(cacheDir: cacheA.Path, extra: sessions)))
        {
            await File.WriteAllBytesAsync($"{a.Path}/shared", old);
            TahoeBackedFilesystem.Fsync($"{a.Path}/shared");
            _fs.Gateway!.Faults.Latency = TimeSpan.FromSeconds(30);
            // Closed on A: its commit is pending (marked for the other mounts) when A dies.
            // Overwritten in place, not truncated first: a fork elsewhere in this test process
            // flushes open files (close-on-exec), and an empty version would need no upload and
            // land at once.
            await using (var stream = new FileStream($"{a.Path}/shared", FileMode.Open, FileAccess.Write))
                await stream.WriteAsync(changed);
            a.Kill();
        }
        _fs.Gateway.Faults.Clear();

        // B declares A dead at its next heartbeat (A's process is gone) and clears A's marker.
        await AssertOpenGoesOnAndTheVersionLandsWhenAReturnsAsync(b, cacheA.Path, old, changed, sessions);
        Assert.Equal(0, await b.UnmountAsync());
    }

    [Fact]
    public async Task A_mount_unmounted_with_commits_left_holds_up_no_open_elsewhere_and_they_land_when_it_returns()
    {
        string[] patience = ["--commit-wait-timeout", "60"];
        using var cacheA = TempDirectory.Create("left-cache");
        var old = RandomNumberGenerator.GetBytes(2 * Block);
        var changed = RandomNumberGenerator.GetBytes(2 * Block);
        await using var b = await TruckeeFsMount.StartAsync(_fs.Options(extra: patience));
        await using (var a = await TruckeeFsMount.StartAsync(_fs.Options(cacheDir: cacheA.Path, netTimeout: "2", extra: patience)))
        {
            await File.WriteAllBytesAsync($"{a.Path}/shared", old);
            TahoeBackedFilesystem.Fsync($"{a.Path}/shared");
            // Every upload fails: A's unmount leaves the closed version staged and journaled.
            _fs.Gateway!.Faults.FailureFraction = 1;
            await using (var stream = new FileStream($"{a.Path}/shared", FileMode.Open, FileAccess.Write))
                await stream.WriteAsync(changed);
            Assert.Equal(0, await a.UnmountAsync());
            Assert.Contains("could not be uploaded before the unmount", a.Output, StringComparison.Ordinal);
        }
        _fs.Gateway.Faults.Clear();
        Assert.NotEmpty(TahoeBackedFilesystem.Staged(cacheA.Path));

        // A took its "commit pending" marker off as it left.
        await AssertOpenGoesOnAndTheVersionLandsWhenAReturnsAsync(b, cacheA.Path, old, changed, patience);
        Assert.Empty(TahoeBackedFilesystem.Staged(cacheA.Path));
        Assert.Equal(0, await b.UnmountAsync());
    }

    /// <summary>
    /// Mount A left with its closed version of "shared" (<paramref name="changed"/>) staged in
    /// <paramref name="cacheA"/> and no marker: B's open goes on at once with the last committed
    /// version (<paramref name="old"/>) instead of waiting a minute for a commit nobody is making;
    /// A's journal kept its version, and the next mount on A's cache commits it.
    /// </summary>
    private async Task AssertOpenGoesOnAndTheVersionLandsWhenAReturnsAsync(TruckeeFsMount b, string cacheA, byte[] old, byte[] changed, string[] extra)
    {
        var clock = Stopwatch.StartNew();
        Assert.Equal(old, await File.ReadAllBytesAsync($"{b.Path}/shared"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"B's open waited {clock.Elapsed.TotalSeconds:0.0} s for a mount that is gone");
        await using var again = await TruckeeFsMount.StartAsync(_fs.Options(cacheDir: cacheA, extra: extra));
        Assert.Equal(changed, await File.ReadAllBytesAsync($"{b.Path}/shared"));
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task Concurrent_writers_on_two_mounts_leave_one_complete_version()
    {
        const int Blocks = 8;
        const int Rounds = 12;
        await using var a = await TruckeeFsMount.StartAsync(_fs.Options());
        await using var b = await TruckeeFsMount.StartAsync(_fs.Options());
        await File.WriteAllBytesAsync($"{a.Path}/contended", Version("A-0", Blocks));
        TahoeBackedFilesystem.Fsync($"{a.Path}/contended");
        _fs.Gateway!.Faults.Latency = TimeSpan.FromMilliseconds(50);
        _fs.Gateway.Faults.LatencyJitter = TimeSpan.FromMilliseconds(150);

        // A rewrites the whole file; B rewrites only its second half, stamped with what it read
        // in the first half. A version that mixes blocks of two commits shows as a first half
        // and a second half that do not belong together.
        var writerA = Task.Run(() =>
        {
            for (var round = 1; round <= Rounds; round++)
                File.WriteAllBytes($"{a.Path}/contended", Version($"A-{round}", Blocks));
        });
        var writerB = Task.Run(() =>
        {
            for (var round = 1; round <= Rounds; round++)
            {
                using var stream = new FileStream($"{b.Path}/contended", FileMode.Open, FileAccess.ReadWrite);
                var first = new byte[Block];
                stream.ReadExactly(first);
                var stamp = $"B-{round}-saw-{Tag(first)}";
                stream.Position = Blocks / 2 * Block;
                for (var i = Blocks / 2; i < Blocks; i++) stream.Write(Stamped(stamp));
            }
        });
        await Task.WhenAll(writerA, writerB);
        TahoeBackedFilesystem.Fsync($"{a.Path}/contended");
        TahoeBackedFilesystem.Fsync($"{b.Path}/contended");
        _fs.Gateway.Faults.Clear();
        Assert.Equal(0, await a.UnmountAsync());
        Assert.Equal(0, await b.UnmountAsync());

        await using var observer = await TruckeeFsMount.StartAsync(_fs.Options());
        var final = await File.ReadAllBytesAsync($"{observer.Path}/contended");
        Assert.Equal(Blocks * Block, final.Length);
        var tags = Enumerable.Range(0, Blocks).Select(i => Tag(final.AsSpan(i * Block, Block))).ToList();
        var firstHalf = tags.Take(Blocks / 2).Distinct().ToList();
        var secondHalf = tags.Skip(Blocks / 2).Distinct().ToList();
        Assert.True(firstHalf.Count == 1 && secondHalf.Count == 1, $"blocks of several versions: {string.Join(", ", tags)}");
        var complete = secondHalf[0].StartsWith("A-", StringComparison.Ordinal)
            ? secondHalf[0] == firstHalf[0]
            : secondHalf[0].EndsWith($"-saw-{firstHalf[0]}", StringComparison.Ordinal);
        Assert.True(complete, $"first half {firstHalf[0]} and second half {secondHalf[0]} are not one version");
        Assert.Equal(0, await observer.UnmountAsync());
    }

    /// <summary>A whole file of <paramref name="blocks"/> blocks, each stamped with <paramref name="tag"/>.</summary>
    private static byte[] Version(string tag, int blocks) => [.. Enumerable.Range(0, blocks).SelectMany(_ => Stamped(tag))];

    /// <summary>One block: the tag, a NUL, then filler.</summary>
    private static byte[] Stamped(string tag)
    {
        var block = new byte[Block];
        Array.Fill(block, (byte)'.');
        var bytes = Encoding.ASCII.GetBytes(tag);
        bytes.CopyTo(block, 0);
        block[bytes.Length] = 0;
        return block;
    }

    private static string Tag(ReadOnlySpan<byte> block) => Encoding.ASCII.GetString(block[..block.IndexOf((byte)0)]);
}
