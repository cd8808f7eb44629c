using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using TruckeeFs.Config;
using TruckeeFs.Vfs;
using static TruckeeFs.Bench.Measuring;

namespace TruckeeFs.Bench;

/// <summary>
/// Small-file creates and unlinks through the engine alone (run it through bench/engine.sh):
/// the calls a mount makes for each file (create, a 1 KiB write, close and release; then
/// unlink and forget), made directly on <see cref="Vfs.Vfs"/> with the configured backends, one
/// file after another, with no FUSE, kernel or client process. What it reaches is a ceiling for
/// a mount's rates on the same backends and machine, and the gap to a mount's rates is what
/// FUSE costs. Rounds of --files files; the first --warmup-rounds are not kept (.NET compiles
/// the hot code again meanwhile, as in a new mount).
/// </summary>
internal static class Program
{
    private const int OpenWriteOnlyCreateExclusive = 0x1 | 0x40 | 0x80;
    private const long RegularFile0644 = 0x8000 | 0x1A4;

    public static async Task<int> Main(string[] args)
    {
        var (flags, files, rounds, warmupRounds, label, output) = ParseArguments(args);
        // As the mount does (MountCommand.Serve): MySql.Data blocks the thread it runs on.
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(completionPorts, 64));

        var configuration = Configuration.Load(null, flags, Environment.GetEnvironmentVariables());
        await using var backends = await Backends.OpenAsync(configuration, NullLogger.Instance, mounting: true);
        var vfs = new Vfs.Vfs(backends.Meta, backends.Content, backends.Coordinator, backends.Mirror, backends.Options, NullLogger.Instance);
        await vfs.RecoverAsync();
        Console.Error.WriteLine($"[engine] {label}: metadata {backends.Meta.Description}; contents {backends.Content.Description}; coordination {backends.Coordinator.Description}");

        var watched = WatchedProcesses();
        var context = new RequestContext(0, 0, Environment.ProcessId);
        var data = new byte[1024];
        new Random(1).NextBytes(data);
        var run = Guid.NewGuid().ToString("N")[..8];
        var kept = new List<Dictionary<string, double>>();
        for (var round = 0; round < warmupRounds + rounds; round++)
        {
            var names = Enumerable.Range(0, files).Select(i => Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{run}-{round}-{i:D6}"))).ToArray();
            var inodes = new long[files];
            var figures = new Dictionary<string, double>();
            await MeasureAsync("create", figures, watched, files, async () =>
            {
                for (var i = 0; i < files; i++)
                {
                    Check("create", vfs.Create(context, parent: 1, names[i], RegularFile0644, OpenWriteOnlyCreateExclusive, out var entry, out var handle));
                    inodes[i] = entry.Id;
                    Check("write", await vfs.WriteAsync(handle, 0, data));
                    Check("flush", await vfs.FlushAsync(handle));
                    await vfs.ReleaseAsync(handle);
                }
            });
            await MeasureAsync("unlink", figures, watched, files, () =>
            {
                for (var i = 0; i < files; i++)
                {
                    Check("unlink", vfs.Unlink(1, names[i]));
                    // The kernel forgets the name's inode after an unlink; so does the engine here.
                    vfs.Forget(inodes[i], 1);
                }
                return Task.CompletedTask;
            });
            var warmup = round < warmupRounds;
            Console.Error.WriteLine($"[engine] {label} round {round + 1}{(warmup ? " (warm-up, not kept)" : "")}: " +
                string.Join(", ", figures.Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Key} {f.Value:F0}"))));
            if (!warmup) kept.Add(figures);
        }
        // Waits for the background commits, so that the next label starts on an idle server.
        await vfs.DisposeAsync();

        var medians = kept[0].Keys.ToDictionary(key => key, key => Median(kept.Select(k => k[key])));
        Console.WriteLine($"{label}: " + string.Join(", ", medians.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.Key} {m.Value:F0}"))) +
            $" (medians of {kept.Count} rounds of {files} files)");
        if (output is not null)
        {
            var existing = File.Exists(output) ? JsonSerializer.Deserialize<Dictionary<string, object>>(File.ReadAllText(output)) ?? [] : [];
            existing[label] = new { files_per_round = files, rounds = kept.Count, warmup_rounds = warmupRounds, medians, samples = kept };
            File.WriteAllText(output, JsonSerializer.Serialize(existing, new JsonSerializerOptions { WriteIndented = true }));
        }
        return 0;
    }

    /// <summary>Times one phase of a round and the CPU each watched process spent on it, per file.</summary>
    private static async Task MeasureAsync(string phase, Dictionary<string, double> figures, Dictionary<string, int> watched, int files, Func<Task> work)
    {
        var before = watched.ToDictionary(p => p.Key, p => CpuSeconds(p.Value));
        var clock = Stopwatch.StartNew();
        await work();
        figures[$"{phase} files/s"] = files / clock.Elapsed.TotalSeconds;
        foreach (var (name, pid) in watched) figures[$"{phase} {name} CPU us/file"] = (CpuSeconds(pid) - before[name]) * 1e6 / files;
    }

    private static void Check(string operation, int status)
    {
        if (status != 0) throw new InvalidOperationException($"{operation} failed with errno {status}");
    }

    /// <summary>This process, and the servers bench/servers.sh exported as BENCH_SERVER_PIDS ("name=pid ...").</summary>
    private static Dictionary<string, int> WatchedProcesses()
    {
        var watched = new Dictionary<string, int> { ["engine"] = Environment.ProcessId };
        foreach (var entry in (Environment.GetEnvironmentVariable("BENCH_SERVER_PIDS") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split('=', 2);
            if (parts.Length == 2 && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var pid)) watched[parts[0]] = pid;
        }
        return watched;
    }

    private static (Dictionary<string, string> Flags, int Files, int Rounds, int WarmupRounds, string Label, string? Output) ParseArguments(string[] args)
    {
        var flags = new Dictionary<string, string>();
        int files = 1000, rounds = 6, warmupRounds = 4;
        var label = "engine";
        string? output = null;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i++])
            {
                case "--files": files = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--warmup-rounds": warmupRounds = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--label": label = value; break;
                case "--out": output = value; break;
                // Any other --key-name is a configuration key, as truckeefs mount takes it.
                case var flag when flag.StartsWith("--", StringComparison.Ordinal): flags[flag[2..].Replace('-', '_')] = value; break;
                default: throw new ArgumentException($"unexpected argument {args[i - 1]}");
            }
        }
        if (files < 1 || rounds < 1 || warmupRounds < 0) throw new ArgumentException("--files and --rounds must be at least 1, --warmup-rounds at least 0");
        return (flags, files, rounds, warmupRounds, label, output);
    }
}
