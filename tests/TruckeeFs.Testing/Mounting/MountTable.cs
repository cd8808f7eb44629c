using System.Text;

namespace TruckeeFs.Testing.Mounting;

/// <summary>Reads <c>/proc/self/mountinfo</c>: which filesystem, if any, is mounted at a path.</summary>
public static class MountTable
{
    /// <summary>
    /// The filesystem type mounted at <paramref name="mountPoint"/> (the field after " - ", such as
    /// "fuse" or "fuse.truckeefs"), or null when nothing is. When mounts are stacked the topmost,
    /// listed last, wins. The path is compared after <see cref="Path.GetFullPath(string)"/>; it must
    /// not go through symlinks, since the kernel lists resolved paths.
    /// </summary>
    public static string? FileSystemTypeAt(string mountPoint)
    {
        var wanted = Path.TrimEndingDirectorySeparator(Path.GetFullPath(mountPoint));
        string? type = null;
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":
            // field 5 is the mount point; optional fields end at " - ", then type and source.
            var fields = line.Split(' ');
            var separator = Array.IndexOf(fields, "-", 6);
            if (fields.Length < 5 || separator < 0 || separator + 1 >= fields.Length)
            {
                continue;
            }

            if (Unescape(fields[4]) == wanted)
            {
                type = Unescape(fields[separator + 1]);
            }
        }

        return type;
    }

    /// <summary>The kernel escapes space, tab, newline and backslash in mountinfo as \ooo octal; all are ASCII.</summary>
    private static string Unescape(string field)
    {
        var text = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && field.AsSpan(i + 1, 3).IndexOfAnyExcept("01234567") < 0)
            {
                text.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }

        return text.ToString();
    }
}
