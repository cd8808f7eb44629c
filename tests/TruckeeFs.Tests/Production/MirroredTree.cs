using System.Globalization;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// A tree as MIRROR mode should show it: every directory (value null) and regular file (its
/// bytes) by path relative to the root, "a/b". Taken from a mount, or read back from the Tahoe
/// tree under a rootcap through the web API, so that the two can be compared byte for byte.
/// </summary>
internal static class MirroredTree
{
    /// <summary>The directories and regular files under <paramref name="root"/> (symlinks and special files are not mirrored).</summary>
    public static SortedDictionary<string, byte[]?> FromMount(string root)
    {
        var tree = new SortedDictionary<string, byte[]?>(StringComparer.Ordinal);
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            Assert.Equal(0, Sys.LStat(entry.FullName, out var stat));
            var path = Path.GetRelativePath(root, entry.FullName);
            if (stat.IsDirectory) tree[path] = null;
            else if (stat.IsRegularFile) tree[path] = File.ReadAllBytes(entry.FullName);
        }
        return tree;
    }

    /// <summary>
    /// The tree under <paramref name="rootCap"/>. A Tahoe directory at a path that
    /// <paramref name="files"/> names is a file stored as a directory of its blocks
    /// (<paramref name="blockSize"/> bytes each): its bytes are its blocks in order.
    /// </summary>
    public static async Task<SortedDictionary<string, byte[]?>> FromTahoeAsync(TahoeClient client, string rootCap, IEnumerable<string> files, int blockSize)
    {
        var tree = new SortedDictionary<string, byte[]?>(StringComparer.Ordinal);
        var fileSet = files.ToHashSet(StringComparer.Ordinal);
        var pending = new Stack<(string Prefix, string Cap)>([("", rootCap)]);
        while (pending.TryPop(out var directory))
        {
            foreach (var (name, entry) in (await client.ListAsync(directory.Cap)).Children)
            {
                var path = directory.Prefix + name;
                if (entry.Kind == TahoeNodeKind.File)
                {
                    tree[path] = await ReadAsync(client, entry);
                }
                else if (fileSet.Contains(path))
                {
                    tree[path] = await ReadBlocksAsync(client, entry.Cap!, blockSize);
                }
                else
                {
                    tree[path] = null;
                    pending.Push((path + "/", entry.Cap!));
                }
            }
        }
        return tree;
    }

    /// <summary>What differs between the mirror and the filesystem, one line each (empty when they agree).</summary>
    public static List<string> Differences(SortedDictionary<string, byte[]?> mirror, SortedDictionary<string, byte[]?> filesystem)
    {
        var differences = new List<string>();
        foreach (var (path, bytes) in filesystem)
        {
            if (!mirror.TryGetValue(path, out var mirrored)) differences.Add($"missing in the mirror: {path}");
            else if (bytes is null != mirrored is null) differences.Add($"{path}: {(bytes is null ? "a directory" : "a file")} in the filesystem, not in the mirror");
            else if (bytes is not null && !bytes.AsSpan().SequenceEqual(mirrored)) differences.Add($"{path}: other contents in the mirror ({mirrored!.Length} bytes, not {bytes.Length})");
        }
        differences.AddRange(mirror.Keys.Where(path => !filesystem.ContainsKey(path)).Select(path => $"only in the mirror: {path}"));
        return differences;
    }

    private static async Task<byte[]> ReadAsync(TahoeClient client, TahoeDirectoryEntry file)
    {
        var bytes = new byte[file.Size ?? throw new InvalidOperationException("an immutable file lists its size")];
        var read = bytes.Length == 0 ? 0 : await client.ReadAsync(file.Cap!, 0, bytes);
        Assert.Equal(bytes.Length, read);
        return bytes;
    }

    /// <summary>The blocks "0", "1", ... in order; a missing number is a hole of zeros.</summary>
    private static async Task<byte[]> ReadBlocksAsync(TahoeClient client, string directoryCap, int blockSize)
    {
        var blocks = (await client.ListAsync(directoryCap)).Children.ToDictionary(c => long.Parse(c.Key, CultureInfo.InvariantCulture), c => c.Value);
        using var assembled = new MemoryStream();
        foreach (var (index, block) in blocks.OrderBy(b => b.Key))
        {
            assembled.SetLength(index * blockSize);
            assembled.Position = index * blockSize;
            assembled.Write(await ReadAsync(client, block));
        }
        return assembled.ToArray();
    }
}
