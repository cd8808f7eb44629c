using System.Text;
using TruckeeFs.Testing.Posix;
using static TruckeeFs.Tests.MultiHost.MountCluster;

namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// Changes made through one mount are seen through the other within moments, although the
/// other's kernel may cache attributes and names for ten minutes: each change invalidates the
/// other kernels' caches. Every check first makes B cache the old state.
/// </summary>
public sealed class InvalidationTests : IAsyncLifetime
{
    // Far below the kernel cache timeouts: only an invalidation can make B see a change this soon.
    private const double Soon = 3;

    private MountCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await MountCluster.StartAsync();

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public void Attribute_changes_on_one_mount_are_seen_on_the_other_at_once()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        WriteFile(On(a, "f"), "0123456789");
        Eventually(() => Sys.Stat(On(b, "f"), out _) == 0, "B sees f");
        Assert.Equal(0, Sys.Stat(On(b, "f"), out var before));

        Assert.Equal(0, Sys.Chmod(On(a, "f"), 0x180));
        Eventually(() => Sys.Stat(On(b, "f"), out var s) == 0 && s.Permissions == 0x180, "B sees chmod 0600");

        Assert.Equal(0, Sys.Utimensat(On(a, "f"), Timespec.FromNanoseconds(1_000_000_000), Timespec.FromNanoseconds(2_000_000_000)));
        Eventually(() => Sys.Stat(On(b, "f"), out var s) == 0 && s.MtimeNs == 2_000_000_000, "B sees utimes");

        Assert.Equal(0, Sys.Truncate(On(a, "f"), 4));
        Eventually(() => Sys.Stat(On(b, "f"), out var s) == 0 && s.Size == 4 && ReadFile(On(b, "f")) == "0123", "B sees the truncation");

        Assert.Equal(0, Sys.SetXattr(On(a, "f"), "user.colour", "blue"u8, 0));
        Eventually(() => Sys.Stat(On(b, "f"), out var s) == 0 && s.CtimeNs > before.CtimeNs, "B sees the ctime an xattr change moved");
        Assert.Equal(0, Sys.GetXattr(On(b, "f"), "user.colour", out var colour));
        Assert.Equal("blue", Encoding.UTF8.GetString(colour));

        Assert.Equal(0, Sys.Link(On(a, "f"), On(a, "g")));
        Eventually(() => Sys.Stat(On(b, "f"), out var s) == 0 && s.Nlink == 2, "B sees the new link count");
    }

    [Fact]
    public void Names_created_removed_and_renamed_on_one_mount_are_seen_on_the_other_at_once()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        Assert.Equal(0, Sys.Mkdir(On(a, "d"), 0x1ED));
        WriteFile(On(a, "d/old"), "x");
        WriteFile(On(a, "d/gone"), "y");
        Eventually(() => Names(On(b, "d")).SequenceEqual(["gone", "old"]), "B lists d");
        Assert.Equal(0, Sys.Stat(On(b, "d/old"), out _));
        Assert.Equal(0, Sys.Stat(On(b, "d/gone"), out _));

        Assert.Equal(0, Sys.Rename(On(a, "d/old"), On(a, "d/new")));
        Assert.Equal(0, Sys.Unlink(On(a, "d/gone")));
        Assert.Equal(0, Sys.Mkdir(On(a, "d/sub"), 0x1ED));
        WriteFile(On(a, "d/created"), "z");

        Eventually(() => Sys.Stat(On(b, "d/old"), out _) == Sys.ENOENT, "B no longer finds the renamed name");
        Eventually(() => Sys.Stat(On(b, "d/gone"), out _) == Sys.ENOENT, "B no longer finds the unlinked name");
        Eventually(() => Names(On(b, "d")).SequenceEqual(["created", "new", "sub"]), "B lists the new names");
        Eventually(() => Sys.Stat(On(b, "d"), out var s) == 0 && s.Nlink == 3, "B sees d's link count with sub");

        Assert.Equal(0, Sys.Rmdir(On(a, "d/sub")));
        Eventually(() => Sys.Stat(On(b, "d/sub"), out _) == Sys.ENOENT, "B no longer finds the removed directory");
    }

    [Fact]
    public void New_contents_committed_on_one_mount_replace_what_the_other_kernel_cached()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        WriteFile(On(a, "data"), "first version");
        Eventually(() => ReadFile(On(b, "data")) == "first version", "B reads the first version");
        // Read twice: the second read is served from B's page cache (kept across opens).
        Assert.Equal("first version", ReadFile(On(b, "data")));

        WriteFile(On(a, "data"), "second, longer version");
        Eventually(() => ReadFile(On(b, "data")) == "second, longer version", "B reads the second version");

        WriteFile(On(a, "data"), "third v");
        Eventually(() => ReadFile(On(b, "data")) == "third v", "B reads the third, shorter version");
    }

    private static List<string> Names(string directory)
    {
        if (Sys.ReadDirectory(directory, out var entries) != 0) return [];
        return [.. entries.Where(e => !e.IsDotOrDotDot).Select(e => e.ToString()).Order(StringComparer.Ordinal)];
    }
}
