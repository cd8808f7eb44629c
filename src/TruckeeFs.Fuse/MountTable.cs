namespace TruckeeFs.Fuse;

/// <summary>This process's view of the mounts (<c>/proc/self/mountinfo</c>).</summary>
public static class MountTable
{
    /// <summary>
    /// The device number (<c>major:minor</c>) of what is mounted at <paramref name="path"/> (an
    /// absolute path), the topmost mount when several are stacked; null when nothing is.
    /// </summary>
    public static string? DeviceAt(string path)
    {
        string? device = null;
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4 && Unescape(fields[4]) == path) device = fields[2];
        }
        return device;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as octal.</summary>
    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
