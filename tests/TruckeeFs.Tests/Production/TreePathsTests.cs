using System.Text;
using TruckeeFs.Content;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// <see cref="TreePaths"/>: the paths the Vfs hands to a tree mirror, found through the
/// metadata store (the embedded SQLite one here; the lookups are the same SQL on MariaDB).
/// </summary>
public sealed class TreePathsTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("tree-paths");
    private readonly SqlMetaStore _meta;

    public TreePathsTests()
    {
        _meta = new SqlMetaStore(new SqliteDialect(Path.Combine(_directory.Path, "metadata.db")), 1, 0, 0);
    }

    public void Dispose()
    {
        _meta.Dispose();
        _directory.Dispose();
    }

    [Fact]
    public void Directories_and_files_are_found_by_their_names_from_the_root()
    {
        var a = Make(1, "a", FileModes.Directory | 0x1ED);
        var b = Make(a, "b", FileModes.Directory | 0x1ED);
        // Enough siblings that finding a name takes more than one page of the listing.
        for (var i = 0; i < 1100; i++) Make(a, $"sibling{i}", FileModes.Regular | 0x1A4);
        var f = Make(b, "f", FileModes.Regular | 0x1A4);
        Assert.Equal(0, _meta.Link(f, b, "g"u8.ToArray(), 2, out _));

        Assert.Equal(TreePath.Root, TreePaths.OfDirectory(_meta, 1));
        Assert.Equal(TreePath.Of("a", "b"), TreePaths.OfDirectory(_meta, b));
        Assert.Equal([TreePath.Of("a", "b", "f"), TreePath.Of("a", "b", "g")], TreePaths.OfFile(_meta, f));

        Assert.Equal(0, _meta.Rename(a, "b"u8.ToArray(), 1, [0xFF, (byte)'x'], RenameFlags.None, 3, out _));
        Assert.Equal(TreePath.Root.Child([0xFF, (byte)'x']).Child("f"u8), TreePaths.OfFile(_meta, f)[0]);

        Assert.Equal(0, _meta.Unlink(b, "f"u8.ToArray(), 4, out _));
        Assert.Equal(0, _meta.Unlink(b, "g"u8.ToArray(), 4, out _));
        Assert.Empty(TreePaths.OfFile(_meta, f));
    }

    private long Make(long parent, string name, long mode)
    {
        Assert.Equal(0, _meta.Create(parent, Encoding.UTF8.GetBytes(name), new NewNode(mode, 0, 0), 1, out var created));
        return created.Id;
    }
}
