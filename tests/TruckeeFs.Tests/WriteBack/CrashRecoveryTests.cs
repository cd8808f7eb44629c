using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.WriteBack;

/// <summary>
/// A <c>truckeefs mount</c> child killed with SIGKILL while its uploads wait on a slow gateway:
/// the next mount on the same state shows every closed file exactly as closed, and commits them
/// to the content store.
/// </summary>
public sealed class CrashRecoveryTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private TahoeBackedFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await TahoeBackedFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task Every_closed_file_survives_a_kill_before_its_upload_and_the_next_mount_commits_it()
    {
        using var cache = TempDirectory.Create("crash-cache");
        var expected = new Dictionary<string, byte[]>();
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            // Committed before the crash: the base that later closes change.
            var shrunk = RandomNumberGenerator.GetBytes(5 * Block);
            await File.WriteAllBytesAsync($"{mount.Path}/shrunk", shrunk);
            var rewritten = RandomNumberGenerator.GetBytes(4 * Block);
            await File.WriteAllBytesAsync($"{mount.Path}/rewritten", rewritten);
            TahoeBackedFilesystem.Fsync($"{mount.Path}/shrunk");
            TahoeBackedFilesystem.Fsync($"{mount.Path}/rewritten");

            _fs.Gateway.Faults.Latency = TimeSpan.FromSeconds(30);
            foreach (var i in Enumerable.Range(0, 6))
            {
                expected[$"new{i}"] = RandomNumberGenerator.GetBytes(i * Block + 777);
                await File.WriteAllBytesAsync($"{mount.Path}/new{i}", expected[$"new{i}"]);
            }
            // Truncated on a block boundary and closed: no block is staged, only the size changed.
            Assert.Equal(0, Sys.Truncate($"{mount.Path}/shrunk", 3 * Block));
            expected["shrunk"] = shrunk[..(3 * Block)];
            // Truncated within a block, grown again by a write past the end, closed.
            using (var stream = new FileStream($"{mount.Path}/rewritten", FileMode.Open, FileAccess.ReadWrite))
            {
                stream.SetLength(Block + 10);
                stream.Position = 2 * Block;
                stream.Write("tail"u8);
            }
            expected["rewritten"] = [.. rewritten[..(Block + 10)], .. new byte[Block - 10], .. "tail"u8.ToArray()];
            // Closed several times: the newest version counts.
            for (var round = 0; round < 3; round++)
            {
                expected["cycled"] = RandomNumberGenerator.GetBytes(2 * Block + round);
                await File.WriteAllBytesAsync($"{mount.Path}/cycled", expected["cycled"]);
            }
            // Times, owner and mode set before the close, as tar sets them: journaled with the version.
            expected["attributed"] = RandomNumberGenerator.GetBytes(Block + 3);
            Assert.Equal(0, Sys.Open($"{mount.Path}/attributed", Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x180, out var fd));
            Assert.Equal(0, Sys.Write(fd, expected["attributed"], out _));
            Assert.Equal(0, Sys.Utimensat($"{mount.Path}/attributed", new Timespec(1_000_000, 5), new Timespec(2_000_000, 6)));
            Assert.Equal(0, Sys.Chown($"{mount.Path}/attributed", 1000, 1001));
            Assert.Equal(0, Sys.Chmod($"{mount.Path}/attributed", 0x1A0));
            Assert.Equal(0, Sys.Close(fd));
            foreach (var (name, data) in expected) Assert.Equal(data, await File.ReadAllBytesAsync($"{mount.Path}/{name}"));
            Assert.Contains(TahoeBackedFilesystem.Staged(cache.Path), path => path.EndsWith(".commit", StringComparison.Ordinal));
            mount.Kill();
        }
        _fs.Gateway.Faults.Clear();

        var uploads = _fs.Gateway.Counters.Uploads;
        await using (var again = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            foreach (var (name, data) in expected)
            {
                Assert.Equal(0, Sys.Stat($"{again.Path}/{name}", out var stat));
                Assert.Equal(data.Length, stat.Size);
                Assert.Equal(data, await File.ReadAllBytesAsync($"{again.Path}/{name}"));
            }
            Assert.Equal(0, Sys.Stat($"{again.Path}/attributed", out var attributed));
            Assert.Equal((0x1A0u, 1000u, 1001u, 1_000_000_000_000_005L, 2_000_000_000_000_006L),
                (attributed.Permissions, attributed.Uid, attributed.Gid, attributed.AtimeNs, attributed.MtimeNs));
            Assert.Equal(0, await again.UnmountAsync());
        }
        Assert.True(_fs.Gateway.Counters.Uploads > uploads, "the next mount uploaded the recovered versions");
        Assert.Empty(TahoeBackedFilesystem.Staged(cache.Path));

        // A fresh cache: everything comes from metadata and the gateway.
        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        foreach (var (name, data) in expected) Assert.Equal(data, await File.ReadAllBytesAsync($"{fresh.Path}/{name}"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }

    [Fact]
    public async Task A_version_closed_while_an_older_one_uploads_is_the_one_recovered()
    {
        using var cache = TempDirectory.Create("crash-cache");
        byte[] newest;
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            _fs.Gateway.Faults.Latency = TimeSpan.FromSeconds(30);
            await File.WriteAllBytesAsync($"{mount.Path}/f", RandomNumberGenerator.GetBytes(3 * Block));
            // The first version's upload is under way (held by the latency) when the second closes.
            await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Gateway.Counters.InFlight > 0, "the first upload starts");
            newest = RandomNumberGenerator.GetBytes(Block + 1);
            await File.WriteAllBytesAsync($"{mount.Path}/f", newest);
            mount.Kill();
        }
        _fs.Gateway.Faults.Clear();
        await using var again = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path));
        Assert.Equal(newest, await File.ReadAllBytesAsync($"{again.Path}/f"));
        Assert.Equal(0, await again.UnmountAsync());
        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(newest, await File.ReadAllBytesAsync($"{fresh.Path}/f"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }
}
