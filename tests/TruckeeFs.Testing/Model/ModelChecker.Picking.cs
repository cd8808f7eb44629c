using System.Text;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Testing.Model;

public sealed partial class ModelChecker
{
    private static bool IsFile(Node n) => n.IsFile;

    private static bool IsDirectory(Node n) => n.IsDirectory;

    private static bool IsSymlink(Node n) => n.IsSymlink;

    private static bool IsAnything(Node n) => true;

    private bool Chance(double probability) => _random.NextDouble() < probability;

    private T OneOf<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private Node? PickNode(Func<Node, bool> filter)
    {
        var candidates = Tree.Where(filter).ToList();
        return candidates.Count == 0 ? null : OneOf(candidates);
    }

    /// <summary>
    /// An existing entry matching <paramref name="filter"/> with probability
    /// <paramref name="existing"/>, a fresh name in an existing directory with probability
    /// <paramref name="fresh"/>, otherwise a path meant to fail (see <see cref="PickOddPath"/>).
    /// </summary>
    private byte[] PickPath(Func<Node, bool> filter, double existing, double fresh)
    {
        var roll = _random.NextDouble();
        if (roll < existing && PickNode(filter) is { } node)
        {
            return node.Path;
        }

        return roll < existing + fresh ? PickFreshPath() : PickOddPath();
    }

    /// <summary>A pool name under the root or an existing directory shallow enough; the name may exist already.</summary>
    private byte[] PickFreshPath()
    {
        var parents = Tree.Where(n => n.IsDirectory && n.Depth < ModelNames.MaxDepth).Select(n => n.Path).Prepend([]).ToList();
        return ModelNames.Join(OneOf(parents), OneOf(ModelNames.Pool));
    }

    /// <summary>Paths whose answer is an error or goes through a symlink: too long a name, a file used as a directory, a missing parent, a symlinked directory, a random deep path.</summary>
    private byte[] PickOddPath()
    {
        switch (_random.Next(5))
        {
            case 0:
                return ModelNames.Join(PickNode(IsDirectory)?.Path ?? [], ModelNames.TooLong);
            case 1 when PickNode(n => !n.IsDirectory) is { } notDirectory:
                return ModelNames.Join(notDirectory.Path, OneOf(ModelNames.Pool));
            case 2:
                return ModelNames.Join("no-such-directory"u8.ToArray(), OneOf(ModelNames.Pool));
            case 3 when PickNode(IsSymlink) is { } symlink:
                return ModelNames.Join(symlink.Path, OneOf(ModelNames.Pool));
            default:
                var path = OneOf(ModelNames.Pool);
                for (var depth = _random.Next(3); depth > 0; depth--)
                {
                    path = ModelNames.Join(path, OneOf(ModelNames.Pool));
                }

                return path;
        }
    }

    private static int DepthOf(byte[] path) => path.Count(b => b == (byte)'/') + 1;

    /// <summary>How many levels lie below <paramref name="path"/> in the reference (0 for a non-directory or an empty one).</summary>
    private int HeightBelow(byte[] path)
    {
        byte[] prefix = [.. path, (byte)'/'];
        var depth = DepthOf(path);
        return Tree.Where(n => n.Path.AsSpan().StartsWith(prefix)).Select(n => n.Depth - depth).DefaultIfEmpty(0).Max();
    }

    /// <summary>Whether moving <paramref name="from"/> to <paramref name="to"/> keeps the tree within <see cref="ModelNames.MaxDepth"/> (plus one).</summary>
    private bool FitsDepth(byte[] from, byte[] to) => DepthOf(to) + HeightBelow(from) <= ModelNames.MaxDepth + 1;

    /// <summary>The size of <paramref name="path"/> in the reference, 0 when it is not there.</summary>
    private long SizeOf(byte[] path) => Sys.Stat(At(Reference, path), out var info) == 0 ? info.Size : 0;

    /// <summary>Offsets that matter: 0, inside the file, at 64 KiB block boundaries give or take a byte or two, and past the end (leaving a hole).</summary>
    private long PickOffset(long size)
    {
        var roll = _random.NextDouble();
        long offset;
        if (roll < 0.2)
        {
            offset = 0;
        }
        else if (roll < 0.5)
        {
            offset = _random.NextInt64(0, size + 1);
        }
        else if (roll < 0.75)
        {
            offset = Math.Max(0, ((long)_random.Next(0, 9) * BlockSize) + _random.Next(-2, 3));
        }
        else
        {
            offset = size + _random.Next(1, 200 * 1024);
        }

        return Math.Min(offset, MaxFileSize - 1);
    }

    /// <summary>Mostly small lengths, sometimes a block or several (up to ~300 KiB).</summary>
    private int PickLength()
    {
        var roll = _random.NextDouble();
        return roll < 0.55 ? _random.Next(1, 4097) : roll < 0.8 ? _random.Next(4097, BlockSize + 1) : _random.Next(BlockSize + 1, 300 * 1024);
    }

    /// <summary>Random bytes to write at <paramref name="offset"/>, never taking the file past <see cref="MaxFileSize"/>.</summary>
    private byte[] PickData(long offset)
    {
        var data = new byte[(int)Math.Min(PickLength(), MaxFileSize - offset)];
        _random.NextBytes(data);
        return data;
    }

    private long PickTruncateSize(long size)
    {
        var roll = _random.NextDouble();
        var length = roll < 0.2 ? 0
            : roll < 0.5 ? _random.NextInt64(0, size + 1)
            : roll < 0.7 ? Math.Max(0, ((long)_random.Next(0, 9) * BlockSize) + _random.Next(-2, 3))
            : size + _random.Next(1, 200 * 1024);
        return Math.Min(length, MaxFileSize);
    }

    private int PickAccessMode() => _random.Next(3) switch { 0 => Sys.O_RDONLY, 1 => Sys.O_WRONLY, _ => Sys.O_RDWR };

    private static string FlagsText(int flags)
    {
        var text = new StringBuilder((flags & Sys.O_ACCMODE) switch { Sys.O_RDONLY => "RDONLY", Sys.O_WRONLY => "WRONLY", _ => "RDWR" });
        foreach (var (flag, name) in new[] { (Sys.O_CREAT, "CREAT"), (Sys.O_EXCL, "EXCL"), (Sys.O_TRUNC, "TRUNC"), (Sys.O_APPEND, "APPEND"), (Sys.O_DIRECTORY, "DIRECTORY"), (Sys.O_NOFOLLOW, "NOFOLLOW") })
        {
            if ((flags & flag) != 0)
            {
                text.Append('|').Append(name);
            }
        }

        return text.ToString();
    }

    /// <summary>What stat shows that must agree: type, permissions, links and (except for directories, whose size is the filesystem's business) size.</summary>
    private static string DescribeStat(StatInfo info)
    {
        var type = info.IsRegularFile ? "file" : info.IsDirectory ? "dir" : info.IsSymlink ? "symlink" : $"type {info.FileType:x}";
        var size = info.IsDirectory ? "" : $" size={info.Size}";
        return $"{type} {ModelNames.Octal(info.Permissions)} nlink={info.Nlink}{size}";
    }
}
