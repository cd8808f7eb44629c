using System.Globalization;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// Temporary folders for test servers, named <c>truckeefs-test-{kind}-{pid}-{random}</c> after the
/// test process that owns them. Folders left behind by a test process that was killed (and so
/// never ran its cleanup) are removed the first time a later run creates one.
/// </summary>
internal static class ServerDirectories
{
    private const string Prefix = "truckeefs-test-";

    /// <summary>The file each server writes its pid to, so that a later run can find it.</summary>
    public const string PidFileName = "server.pid";

    private static readonly Lazy<bool> Swept = new(SweepStale);

    public static string Create(string kind)
    {
        _ = Swept.Value;
        var name = string.Create(CultureInfo.InvariantCulture, $"{Prefix}{kind}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        return Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), name)).FullName;
    }

    public static void Delete(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }

    private static bool SweepStale()
    {
        foreach (var directory in Directory.EnumerateDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            var parts = Path.GetFileName(directory).Split('-');
            if (parts.Length < 2 || !int.TryParse(parts[^2], CultureInfo.InvariantCulture, out var owner) || IsAlive(owner)) continue;
            KillRecordedServer(directory);
            try { Delete(directory); }
            catch (IOException) { /* another run is sweeping the same folder */ }
            catch (UnauthorizedAccessException) { /* another user's folder: theirs to clean */ }
        }
        return true;
    }

    /// <summary>
    /// Kills the server whose pid file is in <paramref name="directory"/>, but only if that pid
    /// still runs a command naming the folder: a recycled pid must not be killed.
    /// </summary>
    private static void KillRecordedServer(string directory)
    {
        var pidFile = Path.Combine(directory, PidFileName);
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid)) return;
        try
        {
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline");
            if (commandLine.Contains(directory, StringComparison.Ordinal)) Libc.Kill(pid, Libc.SigKill);
        }
        catch (IOException) { /* the process is gone */ }
    }

    private static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");
}
