using System.Text;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Production;

/// <summary><see cref="TahoeTreeMirror.ResyncAsync"/> on its own: metadata in the embedded store, an empty or damaged tree.</summary>
public sealed partial class TahoeTreeMirrorTests
{
    private const int BlockSize = 64 << 10;

    [Fact]
    public async Task An_empty_mirror_is_filled_as_the_mirror_writes_it_and_a_second_resync_finds_nothing()
    {
        var dir = Make(1, " lead", FileModes.Directory | 0x1ED);
        var sub = Make(dir, "sub", FileModes.Directory | 0x1ED);
        Make(sub, "empty", FileModes.Regular | 0x1A4);
        var one = Make(1, "one", FileModes.Regular | 0x1A4);
        var sparse = Make(dir, "\u00e9t\u00e9", FileModes.Regular | 0x1A4);
        Make(1, "link", FileModes.Symlink | 0x1FF);
        Make(1, "fifo", FileModes.Fifo | 0x1A4);
        var bytes = new byte[] { 0xFF, (byte)'x' };
        Assert.Equal(0, _meta.Create(1, bytes, new NewNode(FileModes.Directory | 0x1ED, 0, 0), 1, out _));
        var oneCap = TahoeCaps.LiteralCap("one block"u8);
        Commit(one, 9, new BlockRef(0, oneCap, 9));
        // Blocks 0 and 2: block 1 is a hole.
        BlockRef[] blocks = [new(0, TahoeCaps.LiteralCap("block zero"u8), BlockSize), new(2, TahoeCaps.LiteralCap("block two"u8), 9)];
        Commit(sparse, 2 * BlockSize + 9, blocks);

        var report = await _mirror.ResyncAsync(_meta, repair: true);
        Assert.True(report.InStep);
        Assert.Equal(
            ["missing / lead", "missing / lead/sub", "missing / lead/sub/empty", "missing / lead/\u00e9t\u00e9", "missing /one", $"missing /{Encoding.UTF8.GetString(bytes)}"],
            report.Differences.Select(d => $"{d.Kind} {d.Path}").Order(StringComparer.Ordinal));
        var lead = TahoeTreeMirror.EncodeName(" lead"u8);
        var expected = new Dictionary<string, string>
        {
            [lead] = "dir",
            [$"{lead}/sub"] = "dir",
            [$"{lead}/sub/empty"] = TahoeCaps.LiteralCap([]),
            [$"{lead}/\u00e9t\u00e9"] = "dir",
            [$"{lead}/\u00e9t\u00e9/0"] = blocks[0].Cap!,
            [$"{lead}/\u00e9t\u00e9/2"] = blocks[1].Cap!,
            ["one"] = oneCap,
            [TahoeTreeMirror.EncodeName(bytes)] = "dir",
        };
        Assert.Equal(expected, await Tree(_client, _root));
        Assert.Equal(1, report.DirectoriesListed);

        // Each directory is listed once: the root, the three directories and the block directory.
        var again = await _mirror.ResyncAsync(_meta, repair: true);
        Assert.Empty(again.Differences);
        Assert.Equal(5, again.DirectoriesListed);
        Assert.Equal(6, again.EntriesChecked);
        Assert.Equal(expected, await Tree(_client, _root));
        Assert.Empty((await _mirror.ResyncAsync(_meta, repair: false)).Differences);
    }

    [Fact]
    public async Task A_read_only_directory_and_a_file_where_a_directory_belongs_are_replaced_and_a_dry_run_changes_nothing()
    {
        var dir = Make(1, "dir", FileModes.Directory | 0x1ED);
        Make(dir, "inside", FileModes.Directory | 0x1ED);
        Make(1, "ro", FileModes.Directory | 0x1ED);
        var readOnly = (await _client.ListAsync(await _client.CreateDirectoryAsync())).ReadCap;
        await _client.LinkAsync(_root, "ro", readOnly);
        await _client.LinkAsync(_root, "dir", TahoeCaps.LiteralCap("not a directory"u8));
        var before = await Tree(_client, _root);

        var dry = await _mirror.ResyncAsync(_meta, repair: false);
        Assert.Equal(["missing /dir/inside", "wrong /dir", "wrong /ro"], dry.Differences.Select(d => $"{d.Kind} {d.Path}").Order(StringComparer.Ordinal));
        Assert.Equal(dry.Differences, dry.Remaining);
        Assert.False(dry.InStep);
        Assert.Equal(before, await Tree(_client, _root));

        var repaired = await _mirror.ResyncAsync(_meta, repair: true);
        Assert.Equal(dry.Differences, repaired.Differences);
        Assert.True(repaired.InStep);
        Assert.Equal(new Dictionary<string, string> { ["dir"] = "dir", ["dir/inside"] = "dir", ["ro"] = "dir" }, await Tree(_client, _root));
        Assert.NotNull((await _client.ListAsync(_root)).Children["ro"].WriteCap);
    }

    private long Make(long parent, string name, long mode)
    {
        Assert.Equal(0, _meta.Create(parent, Encoding.UTF8.GetBytes(name), new NewNode(mode, 0, 0, 0, (mode & FileModes.TypeMask) == FileModes.Symlink ? "target"u8.ToArray() : null), 1, out var created));
        return created.Id;
    }

    private void Commit(long inode, long size, params BlockRef[] blocks) =>
        Assert.Equal(0, _meta.CommitContent(inode, new ContentCommit(blocks, size, 2, 2), out _, out _));
}
