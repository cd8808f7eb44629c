using System.Text;
using TruckeeFs.Meta;

namespace TruckeeFs.Content;

/// <summary>
/// A path in the filesystem from its root, as raw name bytes (names are bytes: they need not be
/// UTF-8). Immutable; compares by value.
/// </summary>
public sealed class TreePath : IEquatable<TreePath>
{
    private readonly byte[][] _names;

    private TreePath(byte[][] names)
    {
        _names = names;
    }

    /// <summary>The filesystem's root directory.</summary>
    public static TreePath Root { get; } = new([]);

    /// <summary>The names from the root, outermost first.</summary>
    public IReadOnlyList<byte[]> Names => _names;

    public bool IsRoot => _names.Length == 0;

    /// <summary>The last name (empty for the root).</summary>
    public ReadOnlySpan<byte> Name => IsRoot ? [] : _names[^1];

    /// <summary>The directory this path is in (the root for the root).</summary>
    public TreePath Parent => IsRoot ? this : new TreePath(_names[..^1]);

    /// <summary>A path from names given as strings (UTF-8), such as <c>TreePath.Of("a", "b")</c>.</summary>
    public static TreePath Of(params string[] names) => new([.. names.Select(Encoding.UTF8.GetBytes)]);

    /// <summary>The path of the entry <paramref name="name"/> in this directory.</summary>
    public TreePath Child(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.Contains((byte)'/')) throw new ArgumentException("a name is not empty and has no '/'", nameof(name));
        return new TreePath([.. _names, name.ToArray()]);
    }

    public bool Equals(TreePath? other) =>
        other is not null && other._names.Length == _names.Length && _names.Zip(other._names).All(p => p.First.AsSpan().SequenceEqual(p.Second));

    public override bool Equals(object? obj) => Equals(obj as TreePath);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var name in _names) hash.AddBytes(name);
        return hash.ToHashCode();
    }

    /// <summary>"/a/b" for logs (names that are not UTF-8 show replacement characters).</summary>
    public override string ToString() => "/" + string.Join('/', _names.Select(n => Encoding.UTF8.GetString(n)));
}

/// <summary>Finds the paths of inodes through <see cref="IMetaStore.NamesOf"/>, for callers of <see cref="ITreeMirror"/>.</summary>
public static class TreePaths
{
    private const long RootInode = 1;

    /// <summary>The path of a directory, or null if it is not linked into the tree (removed meanwhile).</summary>
    public static TreePath? OfDirectory(IMetaStore meta, long directory)
    {
        var names = new List<byte[]>();
        var seen = new HashSet<long>();
        for (var current = directory; current != RootInode;)
        {
            // A loop can only come from a concurrent rename: give up rather than spin.
            if (!seen.Add(current)) return null;
            var links = meta.NamesOf(current);
            if (links.Count == 0) return null;
            names.Add(links[0].Name);
            current = links[0].Parent;
        }
        var path = TreePath.Root;
        for (var i = names.Count - 1; i >= 0; i--) path = path.Child(names[i]);
        return path;
    }

    /// <summary>The paths of every name of a file (several when hard-linked); empty when it has none.</summary>
    public static IReadOnlyList<TreePath> OfFile(IMetaStore meta, long inode)
    {
        var paths = new List<TreePath>();
        foreach (var (parent, name) in meta.NamesOf(inode))
        {
            if (OfDirectory(meta, parent) is { } directory) paths.Add(directory.Child(name));
        }
        return paths;
    }
}
