using System.Security.Cryptography;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// <c>truckeefs gc</c> through the real executable: objects and cached blocks nothing references
/// (as a crash between storing and committing leaves them) are listed by a dry run, which deletes
/// nothing, and deleted by <c>--delete</c>, which leaves every referenced object alone.
/// </summary>
public sealed class GcTests
{
    [Fact]
    public async Task A_dry_run_lists_unreferenced_objects_and_cached_blocks_and_delete_removes_only_those()
    {
        await using var fs = new EmbeddedFilesystem();
        var data = RandomNumberGenerator.GetBytes(200_000);
        await using (var mount = await fs.MountAsync())
        {
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "kept"), data);
            Assert.Equal(0, await mount.UnmountAsync());
        }
        var referenced = Directory.EnumerateFiles(fs.ContentsDir, "*", SearchOption.AllDirectories).ToList();
        Assert.Equal(4, referenced.Count);

        // An object stored but never committed, and a cached block of a cap nobody uses.
        var leaked = RandomNumberGenerator.GetBytes(1000);
        var leakedCap = "LOCAL:" + Convert.ToHexStringLower(SHA256.HashData(leaked));
        await File.WriteAllBytesAsync(fs.ObjectPath(leakedCap), leaked);
        var blocks = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "blocks")).FullName;
        var staleBlock = Path.Combine(blocks, Convert.ToHexStringLower(SHA256.HashData("URI:CHK:gone"u8)));
        await File.WriteAllBytesAsync(staleBlock, new byte[777]);

        // Young garbage is kept by default: a running mount may be about to reference it.
        var (status, output, error) = await fs.RunAsync("gc", "--json");
        Assert.True(status == 0, output + error);
        Assert.Equal(0, EmbeddedFilesystem.Json(output).GetProperty("count").GetInt32());

        (status, output, error) = await fs.RunAsync("gc", "--min-age", "0");
        Assert.True(status == 0, output + error);
        Assert.Contains($"unreferenced object {leakedCap} (1000 bytes)", output, StringComparison.Ordinal);
        Assert.Contains($"unreferenced cached_block {staleBlock} (777 bytes)", output, StringComparison.Ordinal);
        Assert.Contains("2 unreferenced items", output, StringComparison.Ordinal);
        Assert.Contains("nothing deleted (dry run", output, StringComparison.Ordinal);
        Assert.True(File.Exists(fs.ObjectPath(leakedCap)));
        Assert.True(File.Exists(staleBlock));

        (status, output, error) = await fs.RunAsync("gc", "--min-age", "0", "--delete", "--json");
        Assert.True(status == 0, output + error);
        var json = EmbeddedFilesystem.Json(output);
        Assert.True(json.GetProperty("deleted").GetBoolean());
        Assert.Equal(2, json.GetProperty("count").GetInt32());
        Assert.Equal(1777, json.GetProperty("bytes").GetInt64());
        Assert.Equal(4, json.GetProperty("referenced_caps").GetInt64());
        Assert.False(File.Exists(fs.ObjectPath(leakedCap)));
        Assert.False(File.Exists(staleBlock));
        Assert.All(referenced, path => Assert.True(File.Exists(path), $"{path} is referenced and was deleted"));

        (status, output, error) = await fs.RunAsync("fsck");
        Assert.True(status == 0, output + error);
        await using var again = await fs.MountAsync();
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(again.Path, "kept")));
    }
}
