using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime;
using System.Text.Json;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Tahoe;
using static TruckeeFs.Bench.Measuring;

namespace TruckeeFs.Bench;

/// <summary>
/// The data-path benchmark (run it through bench/datapath.sh): the Tahoe test gateway in this
/// process on loopback with a fixed per-request latency, a real <c>truckeefs mount</c> on it,
/// and the same bytes moved by raw HTTP for comparison. Prints medians and ratios; writes JSON.
/// </summary>
internal static class Program
{
    private const int MiB = 1 << 20;

    public static async Task<int> Main(string[] args)
    {
        var options = BenchOptions.Parse(args);
        if (options is null)
        {
            Console.Error.WriteLine(BenchOptions.Usage);
            return 2;
        }
        var work = Directory.CreateDirectory(Path.Combine(options.WorkDir, $"truckeefs-datapath-{Guid.NewGuid():N}")).FullName;
        try
        {
            await using var gateway = await TahoeTestGateway.StartAsync();
            using var tahoe = new TahoeClient(new TahoeOptions { TahoeUrl = gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(120) });
            var bench = new Bench(options, gateway, await tahoe.CreateDirectoryAsync(), work);
            gateway.Faults.Latency = TimeSpan.FromMilliseconds(options.LatencyMs);
            // Run 0 is not kept: the gateway and this process (the yardstick, not what is
            // measured) pay their JIT and grow their memory there, not in whatever run 1 measures first.
            for (var run = 0; run <= options.Runs; run++) await bench.RunAsync(run);
            if (options.BigMiB > 0) await bench.MeasureMemoryAsync();
            bench.Report();
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private sealed class Bench(BenchOptions options, TahoeTestGateway gateway, string rootCap, string work)
    {
        private const string MountProcess = "mount";
        private const string BenchProcess = "benchmark (gateway, reader/writer/raw client)";
        private readonly byte[] _data = RandomBytes(options.SizeMiB * MiB, seed: 1);
        private readonly Dictionary<string, List<double>> _samples = [];
        private readonly Dictionary<string, Dictionary<string, List<double>>> _cpu = [];
        private readonly Dictionary<string, double> _memory = [];
        private bool _cachesDropped = true;
        private bool _warmingUp;

        public async Task RunAsync(int run)
        {
            _warmingUp = run == 0;
            if (_warmingUp) Console.Error.WriteLine("[datapath] warm-up run (not kept)");
            var file = $"seq-{run}.bin";
            var tahoeData = Path.Combine(work, $"tahoe-data-{run}");
            var tahoeCache = Path.Combine(work, $"tahoe-cache-{run}");
            // Each figure through the mount is followed at once by its raw HTTP yardstick, so
            // that the two of a pair see the machine in the same state.
            using var http = new RawHttp(gateway.BaseUri, options.MaxConnections);
            var caps = new string[(_data.Length + options.BlockSize - 1) / options.BlockSize];
            await using (var mount = await MountAsync(TahoeArgs(), tahoeData, tahoeCache))
            {
                Measure("tahoe cold write", () => Write(Path.Combine(mount.Path, file)), mount);
                await UnmountAsync(mount);
            }
            await MeasureAsync("raw PUT", () => http.PutAllAsync(_data, options.BlockSize, caps));
            // Nothing of the file may be served locally: no cached blocks, no page cache.
            Directory.Delete(Path.Combine(tahoeCache, "blocks"), recursive: true);
            DropCaches();
            await using (var mount = await MountAsync(TahoeArgs(), tahoeData, tahoeCache))
            {
                Measure("tahoe cold read", () => Read(Path.Combine(mount.Path, file)), mount);
                await UnmountAsync(mount);
            }
            await MeasureAsync("raw GET", () => http.GetAllAsync(caps, options.BlockSize));
            DropCaches();
            await using (var mount = await MountAsync(TahoeArgs(), tahoeData, tahoeCache))
            {
                Measure("tahoe warm read", () => Read(Path.Combine(mount.Path, file)), mount);
                await UnmountAsync(mount);
            }
            Directory.Delete(tahoeData, recursive: true);
            Directory.Delete(tahoeCache, recursive: true);

            var localData = Path.Combine(work, $"local-data-{run}");
            var localCache = Path.Combine(work, $"local-cache-{run}");
            await using (var mount = await MountAsync(LocalArgs(), localData, localCache, tahoe: false))
            {
                Measure("embedded write", () => Write(Path.Combine(mount.Path, file)), mount);
                await UnmountAsync(mount);
            }
            DropCaches();
            await using (var mount = await MountAsync(LocalArgs(), localData, localCache, tahoe: false))
            {
                Measure("embedded read", () => Read(Path.Combine(mount.Path, file)), mount);
                await UnmountAsync(mount);
            }
            Directory.Delete(localData, recursive: true);
            Directory.Delete(localCache, recursive: true);
        }

        /// <summary>Peak RSS of the mount process writing, then reading back (cold), a big file on Tahoe.</summary>
        public async Task MeasureMemoryAsync()
        {
            var data = Path.Combine(work, "big-data");
            var cache = Path.Combine(work, "big-cache");
            var length = (long)options.BigMiB * MiB;
            await using var mount = await MountAsync(TahoeArgs(), data, cache);
            var path = Path.Combine(mount.Path, "big.bin");
            var chunk = new byte[MiB];
            var random = new Random(2);
            var clock = Stopwatch.StartNew();
            using (var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
            {
                for (long offset = 0; offset < length; offset += chunk.Length)
                {
                    random.NextBytes(chunk);
                    RandomAccess.Write(handle, chunk, offset);
                }
                RandomAccess.FlushToDisk(handle);
            }
            _memory["big write MiB/s"] = length / (double)MiB / clock.Elapsed.TotalSeconds;
            _memory["peak RSS after write MiB"] = PeakRssMiB(mount.Process.Id);
            Directory.Delete(Path.Combine(cache, "blocks"), recursive: true);
            Directory.CreateDirectory(Path.Combine(cache, "blocks"));
            DropCaches();
            clock.Restart();
            using (var handle = File.OpenHandle(path))
            {
                long total = 0;
                for (int n; (n = RandomAccess.Read(handle, chunk, total)) > 0;) total += n;
                if (total != length) throw new InvalidOperationException($"read {total} of {length} bytes");
            }
            _memory["big read MiB/s"] = length / (double)MiB / clock.Elapsed.TotalSeconds;
            _memory["peak RSS after read MiB"] = PeakRssMiB(mount.Process.Id);
            await UnmountAsync(mount);
        }

        public void Report()
        {
            var medians = _samples.ToDictionary(s => s.Key, s => Median(s.Value));
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"data path, {options.SizeMiB} MiB, {options.BlockSize / MiB} MiB blocks, Tahoe test gateway at {options.LatencyMs} ms per request, max_connections {options.MaxConnections}, median of {options.Runs}"));
            foreach (var (name, values) in _samples)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {name,-18} {medians[name],8:0.0} MiB/s   runs: {string.Join(", ", values.Select(v => v.ToString("0.0", CultureInfo.InvariantCulture)))}"));
            }
            // Each ratio pairs the two figures of one run (taken within seconds of each other),
            // then takes the median over runs: the machine's speed drifts between runs by more
            // than the differences measured, and a ratio of medians would mix runs.
            var pairs = new Dictionary<string, List<double>>
            {
                ["cold read / raw GET"] = Paired("tahoe cold read", "raw GET"),
                ["cold write / raw PUT"] = Paired("tahoe cold write", "raw PUT"),
                ["warm read / embedded read"] = Paired("tahoe warm read", "embedded read"),
            };
            var ratios = pairs.ToDictionary(p => p.Key, p => Median(p.Value));
            foreach (var (name, ratio) in ratios)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {name,-26} {ratio * 100,6:0}%   runs: {string.Join(", ", pairs[name].Select(r => (r * 100).ToString("0", CultureInfo.InvariantCulture) + "%"))}"));
            }
            // What each figure cost in CPU: on two cores the mount and the gateway share them, so
            // the sum per MiB bounds how fast a figure can be.
            var cpu = _cpu.ToDictionary(c => c.Key, c => c.Value.ToDictionary(p => p.Key, p => Median(p.Value)));
            Console.WriteLine("  CPU µs per MiB (medians):");
            foreach (var (name, perProcess) in cpu)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"    {name,-18} {string.Join(", ", perProcess.Select(p => $"{p.Key} {p.Value:0}"))}; total {perProcess.Values.Sum():0}"));
            }
            foreach (var (name, value) in _memory) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-26} {value,8:0.0} ({options.BigMiB} MiB file)"));
            if (!_cachesDropped) Console.WriteLine("  WARNING: /proc/sys/vm/drop_caches is not writable: reads may have come from the page cache");
            var json = JsonSerializer.Serialize(new { options, medians, ratios, ratio_runs = pairs, cpu_us_per_mib_medians = cpu, cpu_us_per_mib = _cpu, memory = _memory, samples = _samples, caches_dropped = _cachesDropped },
                new JsonSerializerOptions { WriteIndented = true });
            if (options.Out is { } output)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
                File.WriteAllText(output, json);
            }
        }

        private string[] TahoeArgs() =>
        [
            "--tahoe-url", gateway.BaseUri.ToString(), "--max-connections", options.MaxConnections.ToString(CultureInfo.InvariantCulture),
            "--block-size", options.BlockSize.ToString(CultureInfo.InvariantCulture), "--net-timeout", "120",
        ];

        private string[] LocalArgs() => ["--block-size", options.BlockSize.ToString(CultureInfo.InvariantCulture)];

        private async Task<TruckeeFsMount> MountAsync(string[] args, string dataDir, string cacheDir, bool tahoe = true)
        {
            Directory.CreateDirectory(dataDir);
            Directory.CreateDirectory(cacheDir);
            return await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions
            {
                Executable = options.Executable ?? TruckeeFsMountOptions.DefaultExecutable,
                DataDir = dataDir,
                CacheDir = cacheDir,
                ExtraArgs = args,
                Environment = new Dictionary<string, string?> { ["TRUCKEEFS_ROOTCAP"] = tahoe ? rootCap : null },
            });
        }

        private static async Task UnmountAsync(TruckeeFsMount mount)
        {
            var code = await mount.UnmountAsync();
            if (code != 0) throw new InvalidOperationException($"truckeefs exited with {code}:{Environment.NewLine}{mount.Output}");
        }

        /// <summary>The file written in 1 MiB writes, made durable with one fsync before the clock stops.</summary>
        private long Write(string path)
        {
            using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
            for (var offset = 0; offset < _data.Length; offset += MiB)
                RandomAccess.Write(handle, _data.AsSpan(offset, Math.Min(MiB, _data.Length - offset)), offset);
            RandomAccess.FlushToDisk(handle);
            return _data.Length;
        }

        /// <summary>The file read in 1 MiB reads and checked against what was written.</summary>
        private long Read(string path)
        {
            using var handle = File.OpenHandle(path);
            var buffer = new byte[MiB];
            long total = 0;
            for (int n; (n = RandomAccess.Read(handle, buffer, total)) > 0; total += n)
            {
                if (!buffer.AsSpan(0, n).SequenceEqual(_data.AsSpan((int)total, n)))
                    throw new InvalidOperationException($"{path}: wrong bytes at {total}");
            }
            if (total != _data.Length) throw new InvalidOperationException($"{path}: read {total} of {_data.Length} bytes");
            return total;
        }

        private void DropCaches()
        {
            using (var sync = Process.Start("sync")) sync.WaitForExit();
            try
            {
                File.WriteAllText("/proc/sys/vm/drop_caches", "3");
            }
            catch (UnauthorizedAccessException)
            {
                _cachesDropped = false;
            }
        }

        /// <summary>Run by run, the sample of <paramref name="measured"/> over that of <paramref name="baseline"/>.</summary>
        private List<double> Paired(string measured, string baseline) =>
            [.. _samples[measured].Zip(_samples[baseline], (m, b) => m / b)];

        private void Sample(string name, double value)
        {
            if (_warmingUp) return;
            if (!_samples.TryGetValue(name, out var values)) _samples[name] = values = [];
            values.Add(value);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[datapath] {name}: {value:0.0} MiB/s"));
        }

        /// <summary>
        /// Takes the figure of <paramref name="work"/> (bytes moved) as the sample <paramref name="name"/>,
        /// with the CPU time it cost the mount (if any) and this process (the gateway, and the
        /// reader, writer or raw HTTP client), per MiB.
        /// </summary>
        private void Measure(string name, Func<long> work, TruckeeFsMount? mount = null) =>
            MeasureAsync(name, () => Task.FromResult(work()), mount).GetAwaiter().GetResult();

        private async Task MeasureAsync(string name, Func<Task<long>> work, TruckeeFsMount? mount = null)
        {
            Quiesce();
            var processes = new Dictionary<string, int> { [BenchProcess] = Environment.ProcessId };
            if (mount is not null) processes[MountProcess] = mount.Process.Id;
            var before = processes.ToDictionary(p => p.Key, p => CpuSeconds(p.Value));
            var clock = Stopwatch.StartNew();
            var bytes = await work();
            var seconds = clock.Elapsed.TotalSeconds;
            var mib = bytes / (double)MiB;
            Sample(name, mib / seconds);
            if (_warmingUp) return;
            foreach (var (process, pid) in processes)
            {
                if (!_cpu.TryGetValue(name, out var perProcess)) _cpu[name] = perProcess = [];
                if (!perProcess.TryGetValue(process, out var values)) perProcess[process] = values = [];
                values.Add((CpuSeconds(pid) - before[process]) * 1e6 / mib);
            }
        }

        /// <summary>
        /// A full, compacting collection of this process before a figure is taken: the gateway in
        /// here holds every object stored so far (gigabytes after a few runs), and a collection
        /// of that heap falling inside one measurement, and not inside the other of its pair,
        /// moved raw GET alone between 250 and 780 MiB/s from run to run.
        /// </summary>
        private static void Quiesce()
        {
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
    }

    /// <summary>Whole blocks moved by plain HTTP, up to max_connections requests at once, as the mount may.</summary>
    private sealed class RawHttp(Uri gateway, int connections) : IDisposable
    {
        private readonly HttpClient _client = new(new SocketsHttpHandler { MaxConnectionsPerServer = connections, AutomaticDecompression = DecompressionMethods.None })
        {
            BaseAddress = gateway,
            Timeout = TimeSpan.FromMinutes(5),
        };

        public async Task<long> PutAllAsync(byte[] data, int blockSize, string[] caps)
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, caps.Length), new ParallelOptions { MaxDegreeOfParallelism = connections }, async (index, token) =>
            {
                var offset = index * blockSize;
                using var body = new ReadOnlyMemoryContent(data.AsMemory(offset, Math.Min(blockSize, data.Length - offset)));
                using var response = await _client.PutAsync("uri?format=CHK", body, token);
                response.EnsureSuccessStatusCode();
                caps[index] = (await response.Content.ReadAsStringAsync(token)).Trim();
            });
            return data.Length;
        }

        public async Task<long> GetAllAsync(string[] caps, int blockSize)
        {
            long total = 0;
            await Parallel.ForEachAsync(caps, new ParallelOptions { MaxDegreeOfParallelism = connections }, async (cap, token) =>
            {
                // Rented, as the mount's downloads rent theirs: a fresh block-sized array per request would time the collector.
                var buffer = ArrayPool<byte>.Shared.Rent(blockSize);
                try
                {
                    using var response = await _client.GetAsync("uri/" + Uri.EscapeDataString(cap), HttpCompletionOption.ResponseHeadersRead, token);
                    response.EnsureSuccessStatusCode();
                    await using var body = await response.Content.ReadAsStreamAsync(token);
                    long received = 0;
                    for (int n; (n = await body.ReadAsync(buffer, token)) > 0;) received += n;
                    Interlocked.Add(ref total, received);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            });
            return total;
        }

        public void Dispose() => _client.Dispose();
    }

    private static double PeakRssMiB(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0).Single();

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}

/// <summary>The benchmark's settings, from the command line.</summary>
internal sealed record BenchOptions
{
    public const string Usage =
        "usage: DataPath [--runs 3] [--size-mib 256] [--big-mib 2048 (0: skip)] [--latency-ms 20] [--block-size-mib 4] [--max-connections 10] [--workdir /var/tmp] [--truckeefs PATH] [--out FILE]";

    public int Runs { get; init; } = 3;
    public int SizeMiB { get; init; } = 256;
    public int BigMiB { get; init; } = 2048;
    public int LatencyMs { get; init; } = 20;
    public int BlockSize { get; init; } = 4 << 20;
    public int MaxConnections { get; init; } = 10;
    public string WorkDir { get; init; } = "/var/tmp";
    public string? Executable { get; init; }
    public string? Out { get; init; }

    public static BenchOptions? Parse(string[] args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length) return null;
            var value = args[i + 1];
            int Number() => int.Parse(value, CultureInfo.InvariantCulture);
            options = args[i] switch
            {
                "--runs" => options with { Runs = Number() },
                "--size-mib" => options with { SizeMiB = Number() },
                "--big-mib" => options with { BigMiB = Number() },
                "--latency-ms" => options with { LatencyMs = Number() },
                "--block-size-mib" => options with { BlockSize = Number() << 20 },
                "--max-connections" => options with { MaxConnections = Number() },
                "--workdir" => options with { WorkDir = value },
                "--truckeefs" => options with { Executable = value },
                "--out" => options with { Out = value },
                _ => null,
            };
            if (options is null) return null;
        }
        return options;
    }
}
