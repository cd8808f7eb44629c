using System.Diagnostics;
using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.WriteBack;

/// <summary>
/// Write-back through a real mount on the Tahoe test gateway: what a close, an fsync and a
/// failing gateway do to uploads, seen in the gateway's counters and through system calls.
/// </summary>
public sealed class WriteBackMountTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private TahoeBackedFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await TahoeBackedFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task A_one_byte_overwrite_in_the_middle_of_a_64_MiB_file_uploads_one_block()
    {
        const int MiB = 1 << 20;
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options(blockSize: "1m"));
        var path = $"{mount.Path}/big";
        var data = RandomNumberGenerator.GetBytes(64 * MiB);
        using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            stream.Write(data);
            stream.Flush(flushToDisk: true);
        }
        var uploads = _fs.Gateway.Counters.Uploads;
        var bytes = _fs.Gateway.Counters.BytesUploaded;

        const long Middle = 32L * MiB + 12345;
        Assert.Equal(0, Sys.Open(path, Sys.O_WRONLY, out var fd));
        try
        {
            Assert.Equal(0, Sys.PWrite(fd, new[] { (byte)(data[Middle] ^ 0x5A) }, Middle, out _));
            Assert.Equal(0, Sys.Fsync(fd));
        }
        finally
        {
            Sys.Close(fd);
        }
        data[Middle] ^= 0x5A;

        Assert.Equal(1, _fs.Gateway.Counters.Uploads - uploads);
        Assert.Equal(MiB, _fs.Gateway.Counters.BytesUploaded - bytes);
        Assert.Equal(0, await mount.UnmountAsync());

        // A new cache: every byte comes back from the gateway.
        await using var again = await TruckeeFsMount.StartAsync(_fs.Options(blockSize: "1m"));
        var back = await File.ReadAllBytesAsync($"{again.Path}/big");
        Assert.True(data.AsSpan().SequenceEqual(back), "the file read back differs");
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task Close_returns_before_the_upload_and_fsync_waits_for_it()
    {
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options());
        var path = $"{mount.Path}/slow";
        var data = RandomNumberGenerator.GetBytes(3 * Block + 100);
        _fs.Gateway.Faults.Latency = TimeSpan.FromSeconds(2);
        var uploads = _fs.Gateway.Counters.Uploads;

        var clock = Stopwatch.StartNew();
        await File.WriteAllBytesAsync(path, data);
        var closed = clock.Elapsed;
        Assert.True(closed < TimeSpan.FromSeconds(1.5), $"write and close took {closed.TotalMilliseconds:0} ms with a 2 s gateway");
        Assert.Equal(uploads, _fs.Gateway.Counters.Uploads);
        // Meanwhile this mount serves the closed version: attributes and bytes.
        Assert.Equal(0, Sys.Stat(path, out var stat));
        Assert.Equal(data.Length, stat.Size);
        Assert.Equal(data, await File.ReadAllBytesAsync(path));

        TahoeBackedFilesystem.Fsync(path);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2), "fsync returned before the gateway could have stored anything");
        Assert.Equal(4, _fs.Gateway.Counters.Uploads - uploads);
        _fs.Gateway.Faults.Clear();
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Repeated_close_cycles_coalesce_into_few_uploads()
    {
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options());
        var path = $"{mount.Path}/log";
        _fs.Gateway.Faults.Latency = TimeSpan.FromMilliseconds(500);
        var uploads = _fs.Gateway.Counters.Uploads;
        var expected = new List<byte>();
        for (var i = 0; i < 30; i++)
        {
            var record = RandomNumberGenerator.GetBytes(1000);
            using (var stream = new FileStream(path, FileMode.Append, FileAccess.Write))
                stream.Write(record);
            expected.AddRange(record);
        }
        TahoeBackedFilesystem.Fsync(path);
        var made = _fs.Gateway.Counters.Uploads - uploads;
        // One block changed 30 times: uncoalesced, 30 uploads.
        Assert.InRange(made, 1, 6);
        _fs.Gateway.Faults.Clear();
        Assert.Equal(0, await mount.UnmountAsync());

        await using var again = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(expected.ToArray(), await File.ReadAllBytesAsync($"{again.Path}/log"));
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task A_failing_gateway_keeps_closed_data_staged_and_retries_until_it_is_stored()
    {
        using var cache = TempDirectory.Create("wb-cache");
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path, netTimeout: "0.5"));
        // Every block big enough to be uploaded (Tahoe keeps tiny ones in their cap).
        var data = RandomNumberGenerator.GetBytes(2 * Block + 1000);
        // The mount's start-up self-test stored a probe: count from here.
        var uploads = _fs.Gateway.Counters.Uploads;
        _fs.Gateway.Faults.FailureFraction = 1;
        await File.WriteAllBytesAsync($"{mount.Path}/kept", data);

        await TahoeBackedFilesystem.WaitUntilAsync(() => mount.Output.Contains("its data stays staged and is retried", StringComparison.Ordinal),
            "the mount logs a failed upload");
        Assert.Equal(uploads, _fs.Gateway.Counters.Uploads);
        Assert.NotEmpty(TahoeBackedFilesystem.Staged(cache.Path));
        Assert.Equal(data, await File.ReadAllBytesAsync($"{mount.Path}/kept"));

        _fs.Gateway.Faults.Clear();
        await TahoeBackedFilesystem.WaitUntilAsync(() => TahoeBackedFilesystem.Staged(cache.Path).Length == 0, "the retried upload lands and the staging area empties");
        Assert.Equal(uploads + 3, _fs.Gateway.Counters.Uploads);
        Assert.Equal(0, await mount.UnmountAsync());

        await using var again = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(data, await File.ReadAllBytesAsync($"{again.Path}/kept"));
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task A_clean_unmount_drains_the_upload_queue()
    {
        using var cache = TempDirectory.Create("wb-cache");
        var files = Enumerable.Range(0, 8).ToDictionary(i => $"f{i}", i => RandomNumberGenerator.GetBytes(Block * (i % 3) + 5000));
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            _fs.Gateway.Faults.Latency = TimeSpan.FromMilliseconds(700);
            foreach (var (name, data) in files) await File.WriteAllBytesAsync($"{mount.Path}/{name}", data);
            Assert.NotEmpty(TahoeBackedFilesystem.Staged(cache.Path));
            Assert.Equal(0, await mount.UnmountAsync());
        }
        _fs.Gateway.Faults.Clear();
        Assert.Empty(TahoeBackedFilesystem.Staged(cache.Path));
        await using var again = await TruckeeFsMount.StartAsync(_fs.Options());
        foreach (var (name, data) in files) Assert.Equal(data, await File.ReadAllBytesAsync($"{again.Path}/{name}"));
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task An_unmount_while_the_gateway_fails_leaves_closed_data_journaled_for_the_next_mount()
    {
        using var cache = TempDirectory.Create("wb-cache");
        var data = RandomNumberGenerator.GetBytes(Block + 5000);
        long uploads;
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path, netTimeout: "0.5")))
        {
            // The mount's start-up self-test stored a probe: count from here.
            uploads = _fs.Gateway.Counters.Uploads;
            _fs.Gateway.Faults.FailureFraction = 1;
            await File.WriteAllBytesAsync($"{mount.Path}/unsent", data);
            Assert.Equal(0, await mount.UnmountAsync());
            Assert.Contains("could not be uploaded before the unmount", mount.Output, StringComparison.Ordinal);
        }
        Assert.Contains(TahoeBackedFilesystem.Staged(cache.Path), path => path.EndsWith(".commit", StringComparison.Ordinal));
        Assert.Equal(uploads, _fs.Gateway.Counters.Uploads);

        _fs.Gateway.Faults.Clear();
        await using (var again = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            Assert.Equal(data, await File.ReadAllBytesAsync($"{again.Path}/unsent"));
            Assert.Equal(0, await again.UnmountAsync());
        }
        Assert.Empty(TahoeBackedFilesystem.Staged(cache.Path));
        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(data, await File.ReadAllBytesAsync($"{fresh.Path}/unsent"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }
}
