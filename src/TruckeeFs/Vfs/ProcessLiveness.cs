namespace TruckeeFs.Vfs;

/// <summary>
/// Tells whether a mount process on this machine still runs, without waiting for its heartbeat
/// to time out. A process is named by the boot it runs in, its pid namespace, its pid and its
/// start time, so a pid reused after a reboot or by a later process, or the same pid in another
/// container, is never mistaken for it.
/// </summary>
internal static class ProcessLiveness
{
    /// <summary>This process's name, as stored in its session.</summary>
    public static string Current { get; } = Describe(Environment.ProcessId) ?? "";

    /// <summary>True or false when <paramref name="liveness"/> names a process this host can see; null when it cannot tell (another machine or container).</summary>
    public static bool? IsAlive(string liveness)
    {
        var parts = liveness.Split(' ');
        var mine = Current.Split(' ');
        if (parts.Length != 4 || mine.Length != 4 || parts[0] != mine[0] || parts[1] != mine[1]) return null;
        return Describe(long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)) == liveness;
    }

    private static string? Describe(long pid)
    {
        try
        {
            var boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            var pidNamespace = new FileInfo("/proc/self/ns/pid").LinkTarget;
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name, which may itself hold spaces and parentheses;
            // the start time is field 22 of the whole line, so the 20th after the name.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return $"{boot} {pidNamespace} {pid} {fields[19]}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
