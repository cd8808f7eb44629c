using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;
using TruckeeFs.Tests.Tahoe;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// <see cref="TahoeTreeMirror"/>: sequences of calls, or a resync from metadata in the embedded
/// store, then the tree the gateway holds under the rootcap, read back with
/// <see cref="TahoeClient.ListAsync"/> (against a real gateway when TRUCKEEFS_TEST_TAHOE_URL is set).
/// </summary>
public sealed partial class TahoeTreeMirrorTests : IAsyncLifetime
{
    private readonly TahoeGatewayUnderTest _gateway = new();
    private readonly TempDirectory _directory = TempDirectory.Create("tree-mirror");
    private SqlMetaStore _meta = null!;
    private TahoeClient _client = null!;
    private string _root = null!;
    private TahoeTreeMirror _mirror = null!;

    public async Task InitializeAsync()
    {
        await _gateway.InitializeAsync();
        _meta = new SqlMetaStore(new SqliteDialect(Path.Combine(_directory.Path, "metadata.db")), 1, 0, 0);
        _client = new TahoeClient(new TahoeOptions { TahoeUrl = _gateway.Url, NetTimeout = TimeSpan.FromSeconds(10) });
        _root = await _client.CreateDirectoryAsync();
        _mirror = new TahoeTreeMirror(_client, _root, NullLogger.Instance);
    }

    public async Task DisposeAsync()
    {
        await _mirror.DisposeAsync();
        _client.Dispose();
        await _gateway.DisposeAsync();
        _meta.Dispose();
        _directory.Dispose();
    }

    [Fact]
    public async Task Creates_renames_moves_and_removals_follow_the_filesystem()
    {
        var f = Block(0, "contents of f");
        var g = Block(0, "contents of g");
        _mirror.DirectoryCreated(TreePath.Of("a"));
        _mirror.DirectoryCreated(TreePath.Of("a", "b"));
        _mirror.FileWritten(TreePath.Of("a", "b", "f"), 13, [f]);
        _mirror.FileWritten(TreePath.Of("a", "empty"), 0, []);
        _mirror.FileWritten(TreePath.Of("g"), 13, [g]);
        _mirror.Renamed(TreePath.Of("a", "b"), TreePath.Of("c"));
        _mirror.Renamed(TreePath.Of("c", "f"), TreePath.Of("a", "f2"));
        _mirror.Renamed(TreePath.Of("g"), TreePath.Of("a", "f2"));
        _mirror.Removed(TreePath.Of("a", "empty"));
        _mirror.DirectoryCreated(TreePath.Of("d"));
        _mirror.Removed(TreePath.Of("d"));
        await _mirror.FlushAsync();

        Assert.Equal(
            new Dictionary<string, string> { ["a"] = "dir", ["a/f2"] = g.Cap!, ["c"] = "dir" },
            await Tree(_client, _root));
        Assert.Equal(0, _mirror.Dropped);
        Assert.Equal(0, _mirror.Pending);
    }

    [Fact]
    public async Task Empty_and_one_block_files_are_tahoe_files_and_longer_ones_directories_of_blocks()
    {
        var one = Block(0, "a single block");
        _mirror.FileWritten(TreePath.Of("empty"), 0, []);
        _mirror.FileWritten(TreePath.Of("small"), one.Length, [one]);
        // Blocks 0, 1 and 3; 2 is a hole.
        BlockRef[] many = [Block(0, "block zero"), Block(1, "block one"), Block(3, "block three")];
        _mirror.FileWritten(TreePath.Of("big"), 3 * 64 * 1024 + 11, many);
        // A block shorter than the file (it was extended by truncate) is a directory too.
        _mirror.FileWritten(TreePath.Of("sparse"), 1000, [Block(0, "short")]);
        await _mirror.FlushAsync();

        var tree = await Tree(_client, _root);
        Assert.Equal(TahoeCaps.LiteralCap([]), tree["empty"]);
        Assert.Equal(one.Cap, tree["small"]);
        Assert.Equal("dir", tree["big"]);
        Assert.Equal(many[0].Cap, tree["big/0"]);
        Assert.Equal(many[1].Cap, tree["big/1"]);
        Assert.Equal(many[2].Cap, tree["big/3"]);
        Assert.False(tree.ContainsKey("big/2"));
        Assert.Equal("dir", tree["sparse"]);

        // Shrinking to one block turns the directory back into a plain file.
        _mirror.FileWritten(TreePath.Of("big"), one.Length, [one]);
        await _mirror.FlushAsync();
        tree = await Tree(_client, _root);
        Assert.Equal(one.Cap, tree["big"]);
        Assert.DoesNotContain("big/0", tree.Keys);
    }

    [Fact]
    public async Task Only_the_newest_contents_of_a_file_written_many_times_count()
    {
        BlockRef last = default;
        for (var i = 0; i < 50; i++)
        {
            last = Block(0, $"version {i}");
            _mirror.FileWritten(TreePath.Of("f"), last.Length, [last]);
        }
        await _mirror.FlushAsync();
        Assert.Equal(last.Cap, (await Tree(_client, _root))["f"]);
    }

    [Fact]
    public async Task Exchange_swaps_two_names_even_when_one_is_not_mirrored()
    {
        var f = Block(0, "file f");
        _mirror.DirectoryCreated(TreePath.Of("d"));
        _mirror.FileWritten(TreePath.Of("d", "inner"), f.Length, [f]);
        _mirror.FileWritten(TreePath.Of("f"), f.Length, [f]);
        _mirror.Exchanged(TreePath.Of("d"), TreePath.Of("f"));
        await _mirror.FlushAsync();
        Assert.Equal(
            new Dictionary<string, string> { ["d"] = f.Cap!, ["f"] = "dir", ["f/inner"] = f.Cap! },
            await Tree(_client, _root));

        // "link" is a symlink: the mirror never heard of it. After the exchange "f" names it.
        _mirror.Exchanged(TreePath.Of("f"), TreePath.Of("link"));
        await _mirror.FlushAsync();
        Assert.Equal(
            new Dictionary<string, string> { ["d"] = f.Cap!, ["link"] = "dir", ["link/inner"] = f.Cap! },
            await Tree(_client, _root));
    }

    [Fact]
    public async Task Renaming_an_unmirrored_name_over_a_file_removes_the_file()
    {
        var f = Block(0, "file f");
        _mirror.FileWritten(TreePath.Of("f"), f.Length, [f]);
        _mirror.Renamed(TreePath.Of("symlink"), TreePath.Of("f"));
        _mirror.Removed(TreePath.Of("never-mirrored"));
        await _mirror.FlushAsync();
        Assert.Empty(await Tree(_client, _root));
        Assert.Equal(0, _mirror.Dropped);
    }

    [Fact]
    public async Task Names_tahoe_would_alter_are_escaped_and_stay_distinct()
    {
        byte[][] names =
        [
            "\u00e9"u8.ToArray(), "e\u0301"u8.ToArray(), " lead"u8.ToArray(), "lead"u8.ToArray(), "trail "u8.ToArray(),
            "100%"u8.ToArray(), "100%25"u8.ToArray(), [0xFF, 0x41], "a\nb"u8.ToArray(), "\u65e5\u672c \u8a9e"u8.ToArray(), "A"u8.ToArray(), "a"u8.ToArray(),
        ];
        foreach (var name in names) _mirror.DirectoryCreated(TreePath.Root.Child(name));
        await _mirror.FlushAsync();
        var listed = (await _client.ListAsync(_root)).Children.Keys.ToHashSet();
        Assert.Equal(names.Length, listed.Count);
        foreach (var name in names) Assert.Contains(TahoeTreeMirror.EncodeName(name), listed);
        // Ordinary names are not touched, so the tree reads naturally.
        Assert.Contains("\u00e9", listed);
        Assert.Contains("\u65e5\u672c \u8a9e", listed);

        // Renames go through Tahoe's t=relink, which strips names: escaped names survive it.
        _mirror.Renamed(TreePath.Of(" lead"), TreePath.Of("trail "));
        await _mirror.FlushAsync();
        listed = (await _client.ListAsync(_root)).Children.Keys.ToHashSet();
        Assert.DoesNotContain(TahoeTreeMirror.EncodeName(" lead"u8), listed);
        Assert.Contains(TahoeTreeMirror.EncodeName("trail "u8), listed);
        Assert.Equal(0, _mirror.Dropped);
    }

    [Theory]
    [InlineData("plain.txt", "plain.txt")]
    [InlineData("with space", "with space")]
    [InlineData(" lead", "%20lead")]
    [InlineData("trail\t", "trail%09")]
    [InlineData("100%", "100%25")]
    [InlineData("a\nb", "a%0Ab")]
    [InlineData("\u00e9t\u00e9", "\u00e9t\u00e9")]
    [InlineData("e\u0301", "e%CC%81")]
    [InlineData("\u00a0nbsp", "%C2%A0nbsp")]
    [InlineData("\U0001F600", "\U0001F600")]
    [InlineData("\u212B", "%E2%84%AB")]
    [InlineData("\uAC00\u11A8", "%EA%B0%80%E1%86%A8")]
    public void Names_are_encoded_as_documented(string name, string expected) =>
        Assert.Equal(expected, TahoeTreeMirror.EncodeName(Encoding.UTF8.GetBytes(name)));

    [Fact]
    public void Names_that_are_not_utf8_escape_every_byte_outside_printable_ascii() =>
        Assert.Equal("a%FFb%25%20", TahoeTreeMirror.EncodeName([(byte)'a', 0xFF, (byte)'b', (byte)'%', (byte)' ']));

    [Fact]
    public async Task Disposal_applies_what_is_still_queued()
    {
        var mirror = new TahoeTreeMirror(_client, _root, NullLogger.Instance);
        for (var i = 0; i < 20; i++) mirror.DirectoryCreated(TreePath.Of($"d{i}"));
        await mirror.DisposeAsync();
        Assert.Equal(20, (await _client.ListAsync(_root)).Children.Count);
        // Calls after disposal are not applied, and flushing does not wait for them.
        mirror.DirectoryCreated(TreePath.Of("late"));
        await mirror.FlushAsync().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task The_marker_is_removed_only_by_a_stop_with_every_update_applied()
    {
        using var cache = TempDirectory.Create("mirror-marker");
        var marker = Path.Combine(cache.Path, "mirror.dirty");
        var clean = new TahoeTreeMirror(_client, _root, NullLogger.Instance, uncleanStopMarker: marker);
        Assert.False(clean.NeedsResync);
        Assert.True(File.Exists(marker));
        clean.DirectoryCreated(TreePath.Of("d"));
        await clean.DisposeAsync();
        Assert.False(File.Exists(marker));

        // An update the gateway refuses (a name under a file) leaves the tree differing.
        var refused = new TahoeTreeMirror(_client, _root, NullLogger.Instance, uncleanStopMarker: marker);
        var f = Block(0, "file f");
        refused.FileWritten(TreePath.Of("f"), f.Length, [f]);
        refused.FileWritten(TreePath.Of("f", "g"), f.Length, [f]);
        await refused.DisposeAsync();
        Assert.Equal(1, refused.Dropped);
        Assert.True(File.Exists(marker));

        // Until a resync, every mirror on that cache directory says it needs one.
        await using (var unsynced = new TahoeTreeMirror(_client, _root, NullLogger.Instance, uncleanStopMarker: marker))
            Assert.True(unsynced.NeedsResync);
        Assert.True(File.Exists(marker));
    }

    private static BlockRef Block(long index, string contents)
    {
        var bytes = Encoding.UTF8.GetBytes(contents);
        return new BlockRef(index, TahoeCaps.LiteralCap(bytes), bytes.Length);
    }

    /// <summary>Every name under <paramref name="dircap"/>, as "a/b" → "dir" or the file's cap.</summary>
    internal static async Task<Dictionary<string, string>> Tree(TahoeClient client, string dircap, string prefix = "")
    {
        var tree = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, entry) in (await client.ListAsync(dircap)).Children)
        {
            var path = prefix + name;
            if (entry.Kind == TahoeNodeKind.Directory)
            {
                tree[path] = "dir";
                foreach (var (child, value) in await Tree(client, entry.Cap!, path + "/")) tree[child] = value;
            }
            else
            {
                tree[path] = entry.Cap!;
            }
        }
        return tree;
    }
}

/// <summary>The mirror under injected gateway failures: it waits them out and loses nothing.</summary>
public sealed class TahoeTreeMirrorFaultTests : IAsyncLifetime
{
    private TahoeTestGateway _gateway = null!;
    private TahoeClient _client = null!;
    private TahoeClient _impatient = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TahoeTestGateway.StartAsync();
        _client = new TahoeClient(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(10) });
        // The mirror's client gives up quickly, so that the mirror's own retries are exercised.
        _impatient = new TahoeClient(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = TimeSpan.FromMilliseconds(300) });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        _impatient.Dispose();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task Operations_queued_during_an_outage_are_applied_after_it_in_order()
    {
        var root = await _client.CreateDirectoryAsync();
        await using var mirror = new TahoeTreeMirror(_impatient, root, NullLogger.Instance, maxBackoff: TimeSpan.FromMilliseconds(200));
        _gateway.Faults.FailureFraction = 1;
        var cap = TahoeCaps.LiteralCap("survives the outage"u8);
        mirror.DirectoryCreated(TreePath.Of("a"));
        mirror.FileWritten(TreePath.Of("a", "f"), 19, [new BlockRef(0, cap, 19)]);
        mirror.Renamed(TreePath.Of("a"), TreePath.Of("b"));
        mirror.DirectoryCreated(TreePath.Of("c"));
        mirror.Removed(TreePath.Of("c"));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (mirror.Retries < 3 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(mirror.Retries >= 3, "the mirror kept retrying during the outage");
        Assert.Equal(5, mirror.Pending + 1);
        _gateway.Faults.Clear();

        await mirror.FlushAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(
            new Dictionary<string, string> { ["b"] = "dir", ["b/f"] = cap },
            await TahoeTreeMirrorTests.Tree(_client, root));
        Assert.Equal(0, mirror.Dropped);
        Assert.True(_gateway.Counters.FailuresInjected > 0);
    }
}
