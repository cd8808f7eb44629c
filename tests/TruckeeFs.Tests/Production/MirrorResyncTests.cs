using System.Diagnostics;
using System.Security.Cryptography;
using TruckeeFs.Config;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Operations;
using Xunit.Abstractions;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// MIRROR mode when the Tahoe tree and the metadata disagree: a mount killed with tree updates
/// queued is resynchronised by the next mount on its cache directory, and <c>truckeefs resync</c>
/// repairs a tree damaged by hand. Each time the Tahoe tree is read back through the web API
/// and compared, contents byte for byte, with the filesystem.
/// </summary>
public sealed class MirrorResyncTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync(faults: true);

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task A_mount_killed_with_mirror_updates_queued_is_resynchronised_by_the_next_mount()
    {
        using var cache = TempDirectory.Create("mirror-cache");
        var options = MirrorOptions(cache.Path);
        var marker = Path.Combine(cache.Path, Backends.MirrorMarkerName);
        SortedDictionary<string, byte[]?> filesystem;
        await using (var mount = await TruckeeFsMount.StartAsync(options))
        {
            Assert.True(File.Exists(marker), "a running MIRROR mount keeps its marker");
            var root = mount.Path;
            Directory.CreateDirectory($"{root}/docs/old");
            await File.WriteAllBytesAsync($"{root}/docs/big.bin", RandomNumberGenerator.GetBytes(3 * Block + 17));
            await File.WriteAllTextAsync($"{root}/docs/kept.txt", "kept");
            await File.WriteAllTextAsync($"{root}/gone.txt", "to be removed");
            await EventuallyInStepAsync(root);

            // Every mirror update now waits a second at the gateway, so they queue up behind each
            // other; the changes below return at once (small files are literal caps, uploaded nowhere).
            _fs.Gateway!.Faults.Latency = TimeSpan.FromSeconds(1);
            Directory.CreateDirectory($"{root}/new/deeper");
            await File.WriteAllTextAsync($"{root}/new/deeper/a.txt", "written while the mirror lagged");
            Directory.Move($"{root}/docs/old", $"{root}/docs/renamed");
            File.Move($"{root}/docs/kept.txt", $"{root}/new/kept.txt");
            File.Delete($"{root}/gone.txt");
            File.Move($"{root}/docs/big.bin", $"{root}/big.bin");
            Assert.Equal(0, Sys.Symlink("big.bin", $"{root}/link"));
            await File.WriteAllTextAsync($"{root}/docs/kept.txt", "a new file under an old name");
            filesystem = MirroredTree.FromMount(root);
            mount.Kill();
        }
        _fs.Gateway.Faults.Clear();
        Assert.True(File.Exists(marker), "a killed mount leaves its marker");
        var lost = await DifferencesAsync(filesystem);
        Assert.True(lost.Count > 0, "the kill lost no queued mirror update");
        output.WriteLine($"{lost.Count} differences after the kill: {string.Join("; ", lost)}");

        await using (var again = await TruckeeFsMount.StartAsync(options))
        {
            Assert.Equal(filesystem, MirroredTree.FromMount(again.Path));
            var left = await DifferencesAsync(filesystem);
            Assert.True(left.Count == 0, string.Join(Environment.NewLine, left));
            Assert.Contains("resynchronising the tree mirror", await again.OutputContainingAsync("tree mirror resynchronised"), StringComparison.Ordinal);
            Assert.Equal(0, await again.UnmountAsync());
        }
        Assert.False(File.Exists(marker), "a clean unmount with every update applied removes the marker");

        // The tree was in step: the next mount has nothing to resynchronise.
        await using var third = await TruckeeFsMount.StartAsync(options);
        Assert.DoesNotContain("resynchronising", await third.OutputContainingAsync("mounted at"), StringComparison.Ordinal);
        Assert.Equal(0, await third.UnmountAsync());
    }

    [Fact]
    public async Task Resync_repairs_a_tahoe_tree_damaged_by_hand()
    {
        SortedDictionary<string, byte[]?> filesystem;
        await using (var mount = await TruckeeFsMount.StartAsync(MirrorOptions()))
        {
            var root = mount.Path;
            Directory.CreateDirectory($"{root}/a/b");
            Directory.CreateDirectory($"{root}/dir");
            await File.WriteAllTextAsync($"{root}/a/one.txt", "one");
            await File.WriteAllBytesAsync($"{root}/a/b/big", RandomNumberGenerator.GetBytes(2 * Block + 5));
            await File.WriteAllBytesAsync($"{root}/big.bin", RandomNumberGenerator.GetBytes(3 * Block));
            await File.WriteAllTextAsync($"{root}/top.txt", "top");
            await File.WriteAllTextAsync($"{root}/\u00e9t\u00e9 with spaces.txt", "summer");
            await File.WriteAllBytesAsync($"{root}/empty", []);
            Assert.Equal(0, Sys.Symlink("top.txt", $"{root}/link"));
            filesystem = MirroredTree.FromMount(root);
            await EventuallyInStepAsync(root);

            // A mount may still queue mirror updates: only comparing is allowed meanwhile.
            var (refused, _, why) = await ResyncAsync();
            Assert.Equal(8, refused);
            Assert.Contains("unmount it before resynchronising", why, StringComparison.Ordinal);
            Assert.Equal(0, await mount.UnmountAsync());
        }
        var (status, text, error) = await ResyncAsync();
        Assert.True(status == 0, text + error);
        Assert.Contains("in step", text, StringComparison.Ordinal);

        // Damage: a directory unlinked, a file relinked to other contents, a directory replaced by
        // a file, a block of a large file replaced, and names the filesystem does not have.
        var client = _fs.Client;
        var other = TahoeCaps.LiteralCap("other contents"u8);
        await client.UnlinkAsync(_fs.RootCap, "a/b");
        await client.LinkAsync(_fs.RootCap, "top.txt", other);
        await client.UnlinkAsync(_fs.RootCap, "dir");
        await client.LinkAsync(_fs.RootCap, "dir", other);
        var blocks = (await client.ListAsync(_fs.RootCap)).Children["big.bin"].Cap!;
        await client.LinkAsync(blocks, "1", other);
        await client.MkdirAsync(_fs.RootCap, "stray/inside");
        await client.LinkAsync(_fs.RootCap, "stray.txt", other);
        await client.LinkAsync(_fs.RootCap, "link", other);
        var damaged = await DifferencesAsync(filesystem);
        Assert.NotEmpty(damaged);

        (status, text, error) = await ResyncAsync("--dry-run", "--json");
        Assert.True(status == 4, text + error);
        var found = Differences(text, "differences");
        string[] expected = ["missing /a/b", "missing /a/b/big", "wrong /top.txt", "wrong /dir", "wrong /big.bin", "extra /stray", "extra /stray.txt", "extra /link"];
        Assert.Equal(expected.Order(), found.Order());
        Assert.Equal(damaged, await DifferencesAsync(filesystem));

        (status, text, error) = await ResyncAsync("--json");
        Assert.True(status == 1, text + error);
        Assert.Equal(expected.Order(), Differences(text, "differences").Order());
        Assert.Empty(Differences(text, "remaining"));
        var left = await DifferencesAsync(filesystem);
        Assert.True(left.Count == 0, string.Join(Environment.NewLine, left));

        (status, text, error) = await ResyncAsync();
        Assert.True(status == 0, text + error);
        Assert.Contains("in step: the tree mirror agrees with the filesystem", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resync_of_a_flat_filesystem_is_refused_naming_the_key()
    {
        var (status, text, error) = await TruckeeFsCli.RunAsync(_fs.Secrets().ToDictionary(p => p.Key, p => p.Value!), ["resync", .. _fs.Arguments()]);
        Assert.True(status == 2, text + error);
        Assert.Contains("backend_storage_strategy: 'FLAT' from default keeps no tree mirror to resynchronise (MIRROR does)", error, StringComparison.Ordinal);
    }

    private TruckeeFsMountOptions MirrorOptions(string? cacheDir = null) => _fs.Options(cacheDir: cacheDir, extra: ["--backend-storage-strategy", "mirror"]);

    private Task<(int Status, string Output, string Error)> ResyncAsync(params string[] arguments) =>
        TruckeeFsCli.RunAsync(_fs.Secrets().ToDictionary(p => p.Key, p => p.Value!),
            ["resync", .. arguments, .. _fs.Arguments(), "--block-size", "64k", "--backend-storage-strategy", "mirror"]);

    /// <summary>"kind path" of each item of the JSON report's <paramref name="list"/>.</summary>
    private static List<string> Differences(string json, string list) =>
        [.. EmbeddedFilesystem.Json(json).GetProperty(list).EnumerateArray().Select(d => $"{d.GetProperty("kind").GetString()} {d.GetProperty("path").GetString()}")];

    private async Task<List<string>> DifferencesAsync(SortedDictionary<string, byte[]?> filesystem) =>
        MirroredTree.Differences(await MirroredTree.FromTahoeAsync(_fs.Client, _fs.RootCap, filesystem.Where(e => e.Value is not null).Select(e => e.Key), Block), filesystem);

    /// <summary>Waits until the mirror of the mount at <paramref name="root"/> has caught up with it.</summary>
    private async Task EventuallyInStepAsync(string root)
    {
        var filesystem = MirroredTree.FromMount(root);
        var clock = Stopwatch.StartNew();
        List<string> differences;
        while ((differences = await DifferencesAsync(filesystem)).Count > 0)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(20)) Assert.Fail($"the mirror did not catch up: {string.Join("; ", differences)}");
            await Task.Delay(100);
        }
    }
}
