using TruckeeFs.Content.Tahoe;
using System.Security.Cryptography;
using StackExchange.Redis;
using TruckeeFs.Testing.Model;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// The real <c>truckeefs mount</c> on MariaDB metadata, Redis coordination and Tahoe contents
/// together: the randomized model test, persistence across mounts with nothing kept locally,
/// and reset_redis.
/// </summary>
public sealed class ProductionMountTests : IAsyncLifetime
{
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task The_model_test_agrees_with_a_local_directory_and_survives_a_remount()
    {
        const int Seed = 11;
        using var reference = TempDirectory.CreateWithXattrsAndLinks("prod-model-ref");
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            // Mounts coordinating through Redis invalidate each other's kernel caches: they may be long.
            Assert.Contains("kernel caches attributes 60 s, names 60 s", await mount.OutputContainingAsync("kernel caches"), StringComparison.Ordinal);
            using var checker = new ModelChecker(mount.Path, reference.Path, Seed);
            try
            {
                checker.Run(1500);
                checker.CloseOpenFiles();
            }
            catch (ModelMismatchException mismatch)
            {
                Assert.Fail($"{mismatch.Message}{Environment.NewLine}truckeefs output:{Environment.NewLine}{Tail(mount.Output)}");
            }
            Assert.Equal(0, await mount.UnmountAsync());
        }

        // New data and cache directories: everything must come from MariaDB and Tahoe.
        await using var again = await TruckeeFsMount.StartAsync(_fs.Options());
        var differences = TreeSnapshot.Compare(again.Path, reference.Path);
        Assert.True(differences.Count == 0, $"After a remount (seed {Seed}):{Environment.NewLine}{string.Join(Environment.NewLine, differences.Take(20))}");
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task Files_directories_links_and_xattrs_persist_with_nothing_kept_locally()
    {
        var contents = new Dictionary<string, byte[]>
        {
            ["empty"] = [],
            ["tiny"] = "fits in a literal cap"u8.ToArray(),
            ["dir/one-block"] = RandomNumberGenerator.GetBytes(40_000),
            ["dir/sub/many-blocks"] = RandomNumberGenerator.GetBytes(64 * 1024 * 5 + 123),
            ["dir/sub/\u00e9t\u00e9 with spaces"] = RandomNumberGenerator.GetBytes(70_000),
        };
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            var started = mount.Output;
            Assert.Contains($"metadata mysql {_fs.MariaDb.Host}:{_fs.MariaDb.Port}/{_fs.Database}", started, StringComparison.Ordinal);
            Assert.Contains($"contents tahoe {_fs.TahoeUrl}", started, StringComparison.Ordinal);
            Assert.Contains($"coordination redis {_fs.Redis.EndPoint}/0", started, StringComparison.Ordinal);
            Assert.DoesNotContain(_fs.RootCap, started, StringComparison.Ordinal);
            Assert.DoesNotContain(_fs.MariaDb.Password, started, StringComparison.Ordinal);
            Assert.DoesNotContain("state in", started, StringComparison.Ordinal);

            Directory.CreateDirectory(Path.Combine(mount.Path, "dir", "sub"));
            Directory.CreateDirectory(Path.Combine(mount.Path, "empty-dir"));
            foreach (var (name, data) in contents) await File.WriteAllBytesAsync(Path.Combine(mount.Path, name), data);
            Assert.Equal(0, Sys.Link(Path.Combine(mount.Path, "dir/one-block"), Path.Combine(mount.Path, "hard-link")));
            Assert.Equal(0, Sys.Symlink("dir/sub/many-blocks", Path.Combine(mount.Path, "symlink")));
            Assert.Equal(0, Sys.SetXattr(Path.Combine(mount.Path, "tiny"), "user.note", "kept in MariaDB"u8, 0));
            Assert.Equal(0, await mount.UnmountAsync());
        }

        Assert.True(_fs.Count("SELECT COUNT(*) FROM inodes") >= 10);
        await using (var again = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            foreach (var (name, data) in contents) Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(again.Path, name)));
            Assert.Equal(contents["dir/one-block"], await File.ReadAllBytesAsync(Path.Combine(again.Path, "hard-link")));
            Assert.Equal(0, Sys.Stat(Path.Combine(again.Path, "hard-link"), out var linked));
            Assert.Equal(2UL, linked.Nlink);
            Assert.Equal(contents["dir/sub/many-blocks"], await File.ReadAllBytesAsync(Path.Combine(again.Path, "symlink")));
            Assert.Equal(0, Sys.GetXattr(Path.Combine(again.Path, "tiny"), "user.note", out var note));
            Assert.Equal("kept in MariaDB"u8.ToArray(), note);
            Assert.True(Directory.Exists(Path.Combine(again.Path, "empty-dir")));
            Assert.Equal(0, await again.UnmountAsync());
        }
    }

    [Fact]
    public async Task Reset_redis_clears_this_filesystems_keys_and_no_others()
    {
        // The first mount creates the filesystem (and its id) in the fresh database.
        await using (var first = await TruckeeFsMount.StartAsync(_fs.Options()))
            Assert.Equal(0, await first.UnmountAsync());
        var prefix = $"truckeefs:{_fs.FilesystemId()}:";
        var other = $"truckeefs:another-{Guid.NewGuid():N}:kv:x";
        using var redis = await ConnectionMultiplexer.ConnectAsync(_fs.Redis.EndPoint);
        var database = redis.GetDatabase();
        await database.StringSetAsync(prefix + "kv:stale", "left by a crashed host");
        await database.StringSetAsync(other, "another filesystem's");

        await using (var kept = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            Assert.True(await database.KeyExistsAsync(prefix + "kv:stale"), "without reset_redis the keys stay");
            Assert.Equal(0, await kept.UnmountAsync());
        }
        await using (var reset = await TruckeeFsMount.StartAsync(_fs.Options(extra: ["--reset-redis", "true"])))
        {
            Assert.False(await database.KeyExistsAsync(prefix + "kv:stale"));
            Assert.True(await database.KeyExistsAsync(other));
            Assert.Equal(0, await reset.UnmountAsync());
        }
        await database.KeyDeleteAsync(other);
    }

    [Fact]
    public async Task Mirror_mode_mounts_and_names_its_tree_mirror()
    {
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options(extra: ["--backend-storage-strategy", "mirror"]));
        Assert.Contains($"tree mirror tahoe directories under the rootcap at {_fs.TahoeUrl}", mount.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(_fs.RootCap, mount.Output, StringComparison.Ordinal);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Mirror_mode_keeps_a_browsable_tahoe_tree_in_step_with_the_names()
    {
        var small = "a small file"u8.ToArray();
        var large = new byte[3 * 65536 + 17];
        new Random(5).NextBytes(large);
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(extra: ["--backend-storage-strategy", "mirror"])))
        {
            Directory.CreateDirectory($"{mount.Path}/docs/old");
            File.WriteAllBytes($"{mount.Path}/docs/small.txt", small);
            File.WriteAllBytes($"{mount.Path}/docs/large.bin", large);
            File.WriteAllText($"{mount.Path}/docs/gone.txt", "to be removed");
            File.Delete($"{mount.Path}/docs/gone.txt");
            Directory.Move($"{mount.Path}/docs/old", $"{mount.Path}/docs/new");
            File.Move($"{mount.Path}/docs/small.txt", $"{mount.Path}/docs/new/moved.txt");
            // Unmounting waits for the mirror to apply everything queued.
            Assert.Equal(0, await mount.UnmountAsync());
        }

        var root = await _fs.Client.ListAsync(_fs.RootCap);
        var docs = await _fs.Client.ListAsync(root.Children["docs"].Cap!);
        Assert.Equal(["large.bin", "new"], docs.Children.Keys.Order());
        var moved = await _fs.Client.ListAsync(docs.Children["new"].Cap!);
        var movedFile = Assert.Single(moved.Children);
        Assert.Equal("moved.txt", movedFile.Key);
        Assert.Equal(TahoeNodeKind.File, movedFile.Value.Kind);
        var buffer = new byte[small.Length + 10];
        Assert.Equal(small.Length, await _fs.Client.ReadAsync(movedFile.Value.Cap!, 0, buffer));
        Assert.Equal(small, buffer[..small.Length]);
        // A multi-block file is a directory of its blocks, in order.
        var blocks = await _fs.Client.ListAsync(docs.Children["large.bin"].Cap!);
        Assert.Equal(["0", "1", "2", "3"], blocks.Children.Keys.Order());
        var last = new byte[100];
        Assert.Equal(17, await _fs.Client.ReadAsync(blocks.Children["3"].Cap!, 0, last));
        Assert.Equal(large[(3 * 65536)..], last[..17]);
    }

    private static string Tail(string output) => output.Length <= 4000 ? output : output[^4000..];
}
