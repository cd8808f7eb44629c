using System.Diagnostics;
using System.Globalization;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// Temporary folders for test servers, named <c>truckeefs-test-{kind}-{pid}-{random}</c> after the
/// test process that owns them. A disposed server deletes its own; the rest (shared servers,
/// which nobody disposes) are deleted by a janitor shell once the test process is gone. Folders
/// left behind anyway (the machine stopped) are removed the first time a later run creates one.
/// </summary>
internal static class ServerDirectories
{
    private const string Prefix = "truckeefs-test-";

    /// <summary>The file each server writes its pid to, so that a later run can find it.</summary>
    public const string PidFileName = "server.pid";

    private static readonly Lazy<bool> Swept = new(SweepStale);
    private static readonly Lazy<bool> Janitor = new(StartJanitor);

    public static string Create(string kind)
    {
        _ = Swept.Value;
        _ = Janitor.Value;
        var name = string.Create(CultureInfo.InvariantCulture, $"{Prefix}{kind}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        return Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), name)).FullName;
    }

    public static void Delete(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }

    /// <summary>
    /// Starts a shell, in a session of its own, that waits for this process to end and then
    /// deletes its folders. Exit handlers cannot do it: the test runner kills its host a few
    /// milliseconds after the run, too soon to delete a database's files. The shell outlives
    /// this process by at most a second and owns no server.
    /// </summary>
    private static bool StartJanitor()
    {
        const string Script = "exec </dev/null >/dev/null 2>&1; while kill -0 \"$1\"; do sleep 1; done; rm -rf \"$2\"/" + Prefix + "*-\"$1\"-*";
        var info = new ProcessStartInfo { FileName = "/bin/sh", UseShellExecute = false };
        // Its own session, so that a Ctrl-C to the test run does not stop it before it cleans up.
        if (ServerBinaries.TryFind("setsid") is { } setsid)
        {
            info.FileName = setsid;
            info.ArgumentList.Add("/bin/sh");
        }
        foreach (var argument in (string[])["-c", Script, "janitor", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), Path.GetTempPath().TrimEnd('/')])
            info.ArgumentList.Add(argument);
        using var janitor = Process.Start(info);
        return true;
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
    /// Kills <paramref name="pid"/> (SIGKILL) if its working directory is inside
    /// <paramref name="directory"/>, as every test server's is: a pid recycled for another
    /// process must not be killed. (Not the command line: Redis rewrites its own.)
    /// </summary>
    public static void KillIfServing(int pid, string directory)
    {
        try
        {
            var cwd = new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget;
            if (cwd is not null && (cwd + "/").StartsWith(directory + "/", StringComparison.Ordinal)) Libc.Kill(pid, Libc.SigKill);
        }
        catch (IOException)
        {
            // The process is gone.
        }
        catch (UnauthorizedAccessException)
        {
            // Another user's process: not ours.
        }
    }

    /// <summary>Kills the server whose pid file is in <paramref name="directory"/>, if it still runs.</summary>
    private static void KillRecordedServer(string directory)
    {
        var pidFile = Path.Combine(directory, PidFileName);
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid))
            KillIfServing(pid, directory);
    }

    private static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");
}
