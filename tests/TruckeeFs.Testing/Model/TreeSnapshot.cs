using System.Security.Cryptography;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Testing.Model;

/// <summary>
/// What the model compares of a whole tree: per entry (by name bytes) its type, permission bits,
/// link count, size (not for directories, whose size is filesystem-specific), content hash,
/// symlink target and user.* xattrs; and which names are hard links of one another. Times, inode
/// numbers, owners and block counts are not compared.
/// </summary>
public static class TreeSnapshot
{
    /// <summary>Describes every entry below <paramref name="root"/>, keyed by escaped relative path; the root itself is "/" and the hard-link groups are "links:".</summary>
    public static SortedDictionary<string, string> Take(string root)
    {
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var byInode = new Dictionary<ulong, List<string>>();
        var rootPath = PosixPath.FromString(root);
        Check(Sys.LStat(rootPath, out var rootInfo), "lstat", root);
        // The roots' own modes depend on how each was made (a mount's root, a temp directory), so
        // only their link count, which counts subdirectories, is compared.
        entries["/"] = $"dir nlink={rootInfo.Nlink}";
        Walk(rootPath, [], entries, byInode);

        // Hard links: the same groups of names must share an inode in both trees.
        var groups = byInode.Values.Where(g => g.Count > 1).Select(g => string.Join(" = ", g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal);
        entries["links:"] = string.Join("; ", groups);
        return entries;
    }

    /// <summary>The differences between two snapshots, one line each; empty when equal.</summary>
    public static List<string> Differences(SortedDictionary<string, string> sut, SortedDictionary<string, string> reference)
    {
        var differences = new List<string>();
        foreach (var key in sut.Keys.Union(reference.Keys).Order(StringComparer.Ordinal))
        {
            var inSut = sut.TryGetValue(key, out var a);
            var inReference = reference.TryGetValue(key, out var b);
            if (!inSut)
            {
                differences.Add($"{key}: missing in SUT; reference has {b}");
            }
            else if (!inReference)
            {
                differences.Add($"{key}: only in SUT: {a}");
            }
            else if (a != b)
            {
                differences.Add($"{key}: SUT {a}; reference {b}");
            }
        }

        return differences;
    }

    /// <summary>The differences between the trees at <paramref name="sut"/> and <paramref name="reference"/>.</summary>
    public static List<string> Compare(string sut, string reference) => Differences(Take(sut), Take(reference));

    private static void Walk(PosixPath directory, byte[] relative, SortedDictionary<string, string> entries, Dictionary<ulong, List<string>> byInode)
    {
        Check(Sys.ReadDirectory(directory, out var children), "readdir", directory.ToString());
        foreach (var child in children.Where(c => !c.IsDotOrDotDot))
        {
            var path = PosixPath.Combine(directory, child.Name);
            var rel = ModelNames.Join(relative, child.Name);
            var key = PosixPath.Escape(rel);
            if (entries.ContainsKey(key))
            {
                // The only way two entries render alike is the filesystem listing one name twice.
                entries[key] += " (LISTED TWICE)";
                continue;
            }

            Check(Sys.LStat(path, out var info), "lstat", path.ToString());
            entries[key] = Describe(path, info);
            if (!info.IsDirectory)
            {
                if (!byInode.TryGetValue(info.Ino, out var names))
                {
                    byInode[info.Ino] = names = [];
                }

                names.Add(key);
            }
            else
            {
                Walk(path, rel, entries, byInode);
            }
        }
    }

    private static string Describe(PosixPath path, StatInfo info)
    {
        var mode = ModelNames.Octal(info.Permissions);
        if (info.IsDirectory)
        {
            return $"dir {mode} nlink={info.Nlink} {Xattrs(path)}";
        }

        if (info.IsSymlink)
        {
            Check(Sys.ReadLink(path, out var target), "readlink", path.ToString());
            return $"symlink -> {PosixPath.Escape(target)} size={info.Size} nlink={info.Nlink}";
        }

        var kind = info.IsRegularFile ? $"file sha={ContentHash(path)}" : $"type {ModelNames.Octal(info.FileType)}";
        return $"{kind} {mode} nlink={info.Nlink} size={info.Size} {Xattrs(path)}";
    }

    /// <summary>SHA-256 of the contents, first 16 hex digits: enough to tell two files apart in a message.</summary>
    internal static string ContentHash(PosixPath path)
    {
        Check(Sys.Open(path, Sys.O_RDONLY, out var fd), "open", path.ToString());
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[128 * 1024];
            for (long offset = 0; ; )
            {
                Check(Sys.PRead(fd, buffer, offset, out var n), "pread", path.ToString());
                if (n == 0)
                {
                    break;
                }

                hash.AppendData(buffer, 0, n);
                offset += n;
            }

            return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
        }
        finally
        {
            _ = Sys.Close(fd);
        }
    }

    /// <summary>"xattrs[user.a=len:hash ...]" in name order, of a file or directory (symlinks cannot carry user.* xattrs on Linux); only the user namespace, since security.* and system.* depend on the host.</summary>
    internal static string Xattrs(PosixPath path)
    {
        Check(Sys.ListXattr(path, out var names), "listxattr", path.ToString());
        var parts = new List<string>();
        foreach (var name in names.Where(n => n.StartsWith("user.", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            Check(Sys.GetXattr(path, name, out byte[] value), "getxattr " + name, path.ToString());
            parts.Add($"{name}={value.Length}:{Convert.ToHexStringLower(SHA256.HashData(value))[..12]}");
        }

        return $"xattrs[{string.Join(' ', parts)}]";
    }

    private static void Check(int errno, string call, string path)
    {
        if (errno != 0)
        {
            throw new IOException($"{call} {path} failed while snapshotting the tree: {Sys.ErrnoName(errno)}");
        }
    }
}
