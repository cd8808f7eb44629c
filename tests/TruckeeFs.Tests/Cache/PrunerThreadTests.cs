using System.Globalization;
using TruckeeFs.Testing.Mounting;

namespace TruckeeFs.Tests.Cache;

/// <summary>The pruner thread of a real mount (embedded default): it exists with cache_maintenance, at the niceness `nice` asks.</summary>
public sealed class PrunerThreadTests
{
    // Linux keeps 15 characters of a thread's name.
    private const string ThreadName = "truckeefs cache";

    [Fact]
    public async Task The_pruner_thread_runs_at_the_niceness_nice_asks_for()
    {
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["--nice", "7"] });
        var nice = await PrunerNicenessAsync(mount.Process.Id);
        Assert.Equal(7, nice);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Without_cache_maintenance_there_is_no_pruner_thread()
    {
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["--cache-maintenance", "false"] });
        // The mount is up: had a pruner been started, its thread would be there.
        Assert.Null(PrunerNiceness(mount.Process.Id));
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task A_niceness_above_19_is_refused_naming_the_key()
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["--nice", "20"] }));
        Assert.Contains("nice", refused.Message, StringComparison.Ordinal);
        Assert.Contains("above 19", refused.Message, StringComparison.Ordinal);
    }

    private static async Task<int> PrunerNicenessAsync(int pid)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (PrunerNiceness(pid) is { } nice && nice != 0) return nice;
            await Task.Delay(50);
        }
        return PrunerNiceness(pid) ?? throw new InvalidOperationException($"no thread named '{ThreadName}' in process {pid}");
    }

    /// <summary>Field 19 of /proc/PID/task/TID/stat (counted after the parenthesized name) is the niceness.</summary>
    private static int? PrunerNiceness(int pid)
    {
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') != ThreadName) continue;
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return int.Parse(fields[16], CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                // The thread ended meanwhile.
            }
        }
        return null;
    }
}
