namespace TruckeeFs.Testing.Posix;

/// <summary>
/// A fresh directory that is deleted, with everything in it, on dispose. Deletion works on bytes
/// (names that are not UTF-8 included), makes read-only directories writable first, and never
/// descends into another filesystem, so a mount left inside by a failed test is not emptied.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    private TempDirectory(string path) => Path = path;

    /// <summary>Absolute path of the directory.</summary>
    public string Path { get; }

    /// <summary>Creates a directory named <paramref name="prefix"/>-random under the system temp directory.</summary>
    public static TempDirectory Create(string prefix) => CreateIn(System.IO.Path.GetTempPath(), prefix);

    /// <summary>
    /// Creates a directory on a filesystem that supports hard links and user.* extended
    /// attributes, as a reference tree or an xattr test needs: the system temp directory when it
    /// does (ext4 does; tmpfs before Linux 6.6 has no user.* xattrs), else /var/tmp, else the
    /// test's own output directory.
    /// </summary>
    /// <exception cref="InvalidOperationException">None of the candidates supports both.</exception>
    public static TempDirectory CreateWithXattrsAndLinks(string prefix)
    {
        var tried = new List<string>();
        foreach (var parent in new[] { System.IO.Path.GetTempPath(), "/var/tmp", AppContext.BaseDirectory })
        {
            if (!Directory.Exists(parent))
            {
                continue;
            }

            var candidate = CreateIn(parent, prefix);
            var problem = ProbeXattrsAndLinks(candidate.Path);
            if (problem is null)
            {
                return candidate;
            }

            tried.Add($"{parent}: {problem}");
            candidate.Dispose();
        }

        throw new InvalidOperationException("No directory supports hard links and user.* xattrs: " + string.Join("; ", tried));
    }

    /// <summary>Deletes the tree; see the class summary for what it will not delete.</summary>
    public void Dispose() => DeleteTree(Path);

    /// <summary>
    /// Deletes <paramref name="path"/> and everything below it that lies on the same filesystem;
    /// a mount point found inside is left in place (and so is its parent chain).
    /// </summary>
    public static void DeleteTree(string path)
    {
        if (Sys.LStat(path, out var top) != 0)
        {
            return;
        }

        DeleteTree(PosixPath.FromString(path), top);
    }

    private static void DeleteTree(PosixPath path, StatInfo info)
    {
        if (!info.IsDirectory)
        {
            _ = Sys.Unlink(path);
            return;
        }

        // Root may write anywhere, but an unprivileged run must make a 0555 directory writable
        // before emptying it.
        _ = Sys.Chmod(path, 0b111_000_000);
        if (Sys.ReadDirectory(path, out var entries) == 0)
        {
            foreach (var entry in entries.Where(e => !e.IsDotOrDotDot))
            {
                var child = PosixPath.Combine(path, entry.Name);
                if (Sys.LStat(child, out var childInfo) == 0 && childInfo.Dev == info.Dev)
                {
                    DeleteTree(child, childInfo);
                }
            }
        }

        _ = Sys.Rmdir(path);
    }

    private static TempDirectory CreateIn(string parent, string prefix)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetFullPath(parent), $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)]);
        Directory.CreateDirectory(path);
        return new TempDirectory(path);
    }

    private static string? ProbeXattrsAndLinks(string directory)
    {
        var file = System.IO.Path.Combine(directory, ".probe");
        var link = System.IO.Path.Combine(directory, ".probe-link");
        File.WriteAllBytes(file, []);
        try
        {
            var errno = Sys.Link(file, link);
            if (errno != 0)
            {
                return "link: " + Sys.ErrnoName(errno);
            }

            errno = Sys.SetXattr(file, "user.probe", "1"u8, 0);
            return errno != 0 ? "setxattr user.probe: " + Sys.ErrnoName(errno) : null;
        }
        finally
        {
            _ = Sys.Unlink(link);
            _ = Sys.Unlink(file);
        }
    }
}
