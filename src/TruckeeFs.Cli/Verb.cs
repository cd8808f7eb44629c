using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TruckeeFs.Config;
using TruckeeFs.Content;
using TruckeeFs.Coordination;
using TruckeeFs.Fuse;
using TruckeeFs.Meta;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>What the operations verbs share: loading the configuration, failures as one line, JSON and progress output.</summary>
internal static class Verb
{
    /// <summary>A session whose heartbeat is younger than this is a host that may still have the filesystem mounted.</summary>
    private static readonly TimeSpan LiveHeartbeat = TimeSpan.FromMinutes(5);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    /// <summary>
    /// Runs <paramref name="body"/> with the merged configuration; a bad configuration exits 2, a
    /// backend that fails exits <paramref name="failure"/> with one line naming it.
    /// </summary>
    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, Func<Configuration, Task<int>> body, int failure = Program.Failure)
    {
        try
        {
            var configuration = Configuration.Load(configFile, flags, Environment.GetEnvironmentVariables());
            return body(configuration).GetAwaiter().GetResult();
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"truckeefs: {e.Message}");
            return Program.BadConfiguration;
        }
        catch (Exception e) when (IsBackendFailure(e))
        {
            Console.Error.WriteLine($"truckeefs: {e.Message}");
            return failure;
        }
    }

    /// <summary>
    /// Whether the filesystem may still be mounted somewhere: on this host, or by a session
    /// whose heartbeat is younger than <see cref="LiveHeartbeat"/>. Says so on standard error,
    /// naming the mounts and that they must be unmounted before <paramref name="doing"/>.
    /// </summary>
    public static bool MountedAnywhere(Backends backends, string doing)
    {
        if (MountStatus.OnThisHost().FirstOrDefault(m => m.IsRunning && m.Metadata == backends.Meta.Description) is { } mounted)
        {
            Console.Error.WriteLine($"truckeefs: {mounted.Mountpoint} has this filesystem mounted (pid {mounted.Pid}); unmount it before {doing} (truckeefs umount {mounted.Mountpoint})");
            return true;
        }
        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var live = backends.Meta.Sessions().Where(s => now - s.Heartbeat < LiveHeartbeat.Ticks * 100).ToList();
        if (live.Count == 0) return false;
        Console.Error.WriteLine($"truckeefs: {string.Join(", ", live.Select(s => $"{s.Host} (pid {s.Pid} at {s.Mountpoint})"))} " +
            $"mounted this filesystem less than {LiveHeartbeat.TotalMinutes:0} minutes ago; unmount it everywhere before {doing}");
        return true;
    }

    /// <summary>Failures of a server, a disk or the environment, as opposed to bugs.</summary>
    public static bool IsBackendFailure(Exception e) =>
        e is MetaStoreException or ContentStoreException or CoordinatorException or FuseException or IOException or UnauthorizedAccessException or TimeoutException;

    /// <summary>Writes <paramref name="value"/> as JSON (snake_case names) on standard output.</summary>
    public static void WriteJson<T>(T value)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));
        Console.Out.Flush();
    }

    /// <summary>
    /// A progress line on standard error, rewritten in place at most a few times a second, when
    /// standard error is a terminal; null (no progress) otherwise, so logs and pipes stay clean.
    /// </summary>
    public static Action<ProgressReport>? TerminalProgress()
    {
        if (Console.IsErrorRedirected) return null;
        var clock = Stopwatch.StartNew();
        TimeSpan? last = null;
        return report =>
        {
            var now = clock.Elapsed;
            if (now - last < TimeSpan.FromMilliseconds(200) && report.Done != report.Total) return;
            last = now;
            var seconds = Math.Max(now.TotalSeconds, 0.001);
            var of = report.Total > 0 ? string.Create(CultureInfo.InvariantCulture, $"/{report.Total}") : "";
            Console.Error.Write(string.Create(CultureInfo.InvariantCulture,
                $"\r{report.Phase}: {report.Done}{of} items, {Bytes(report.Bytes)}, {report.Done / seconds:0} items/s, {Bytes((long)(report.Bytes / seconds))}/s\u001b[K"));
            if (report.Total > 0 && report.Done == report.Total) Console.Error.WriteLine();
        };
    }

    /// <summary>A byte count for people: 1.5 MiB.</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B") : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }
}
