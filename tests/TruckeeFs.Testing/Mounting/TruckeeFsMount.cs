using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Testing.Mounting;

/// <summary>
/// A real <c>truckeefs mount</c> child process and its mount, for tests that drive the
/// filesystem with system calls. Start with <see cref="StartAsync"/>, which returns once
/// <c>/proc/self/mountinfo</c> lists the mount; dispose to stop it. Every wait is bounded and
/// disposal always leaves no mount behind (lazily unmounting as a last resort), so a failing or
/// hung filesystem fails its test instead of hanging the run.
/// </summary>
public sealed class TruckeeFsMount : IAsyncDisposable
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan FusermountTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan BusyUnmountRetry = TimeSpan.FromSeconds(2);
    private const int OutputTailLength = 4000;

    // Mounts still alive when the test host exits (a test that forgot to dispose, a crash in a
    // fixture) are killed and lazily unmounted so they do not outlive the run.
    private static readonly ConcurrentDictionary<TruckeeFsMount, byte> Live = new();

    private readonly StringBuilder _output = new();
    private readonly List<string> _ownedDirectories;
    private int _disposed;

    static TruckeeFsMount() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var mount in Live.Keys)
        {
            mount.Kill();
        }
    };

    private TruckeeFsMount(string path, string dataDir, string cacheDir, Process process, List<string> ownedDirectories)
    {
        Path = path;
        DataDir = dataDir;
        CacheDir = cacheDir;
        Process = process;
        _ownedDirectories = ownedDirectories;
    }

    /// <summary>The mount point (absolute).</summary>
    public string Path { get; }

    /// <summary>The --data-dir given to the child.</summary>
    public string DataDir { get; }

    /// <summary>The --cache-dir given to the child.</summary>
    public string CacheDir { get; }

    /// <summary>The child process.</summary>
    public Process Process { get; }

    /// <summary>Everything the child wrote to stdout and stderr so far, line-interleaved as received.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// The output so far once it contains <paramref name="text"/>: lines arrive asynchronously,
    /// so a line the child printed before the mount appeared may not have been received yet when
    /// <see cref="StartAsync"/> returns. Returns the output as it is after 10 s otherwise.
    /// </summary>
    public async Task<string> OutputContainingAsync(string text)
    {
        var clock = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        return Output;
    }

    /// <summary>True when <c>/proc/self/mountinfo</c> lists a "fuse" or "fuse.truckeefs" mount at <paramref name="path"/> (alive or with a dead daemon).</summary>
    public static bool IsMounted(string path) => MountTable.FileSystemTypeAt(path) is "fuse" or "fuse.truckeefs";

    /// <summary>
    /// Starts <c>EXECUTABLE mount MOUNTPOINT --data-dir D --cache-dir C [extra args] [-v]</c> and
    /// waits until the mount appears.
    /// </summary>
    /// <exception cref="InvalidOperationException">The child exited before mounting; the message has its output.</exception>
    /// <exception cref="TimeoutException">No mount within <see cref="TruckeeFsMountOptions.MountTimeout"/>; the child was killed.</exception>
    public static async Task<TruckeeFsMount> StartAsync(TruckeeFsMountOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!File.Exists(options.Executable))
        {
            throw new FileNotFoundException($"{options.Executable} does not exist: does the test project reference src/TruckeeFs.Cli?", options.Executable);
        }

        var owned = new List<string>();
        var mountPoint = options.MountPoint ?? NewOwnedDirectory("truckeefs-mnt", owned);
        var dataDir = options.DataDir ?? NewOwnedDirectory("truckeefs-data", owned);
        var cacheDir = options.CacheDir ?? NewOwnedDirectory("truckeefs-cache", owned);
        Directory.CreateDirectory(mountPoint);
        mountPoint = System.IO.Path.GetFullPath(mountPoint);

        var start = new ProcessStartInfo(options.Executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in (string[])["mount", mountPoint, "--data-dir", dataDir, "--cache-dir", cacheDir, .. options.ExtraArgs])
        {
            start.ArgumentList.Add(arg);
        }

        if (options.Verbose)
        {
            start.ArgumentList.Add("-v");
        }

        foreach (var (name, value) in options.Environment)
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        var mount = new TruckeeFsMount(mountPoint, dataDir, cacheDir, process, owned);
        process.OutputDataReceived += (_, e) => mount.Append(e.Data);
        process.ErrorDataReceived += (_, e) => mount.Append(e.Data);
        process.Start();
        Live[mount] = 0;
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (!IsMounted(mountPoint))
        {
            if (process.HasExited)
            {
                // Drain the redirected streams so the message has the child's last words.
                await process.WaitForExitAsync().ConfigureAwait(false);
                var code = process.ExitCode;
                await mount.DisposeAsync().ConfigureAwait(false);
                throw new InvalidOperationException($"{start.FileName} exited with code {code} before mounting {mountPoint}.{mount.OutputTail()}");
            }

            if (clock.Elapsed > options.MountTimeout)
            {
                mount.Kill();
                await mount.DisposeAsync().ConfigureAwait(false);
                throw new TimeoutException($"{mountPoint} was not mounted within {options.MountTimeout.TotalSeconds:0.#} s.{mount.OutputTail()}");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        return mount;
    }

    /// <summary>
    /// Runs <c>fusermount3 -u</c> (a clean unmount, as a user would) and waits up to 60 s for the
    /// child to exit. A busy mount is tried again for up to 2 s: a process another test forks
    /// holds copies of this process's descriptors, close-on-exec ones too, until it execs.
    /// </summary>
    /// <returns>The child's exit code.</returns>
    /// <exception cref="InvalidOperationException">fusermount3 failed, for instance EBUSY because a file is still open.</exception>
    /// <exception cref="TimeoutException">The child did not exit within 60 s after the unmount.</exception>
    public async Task<int> UnmountAsync()
    {
        var clock = Stopwatch.StartNew();
        var (code, output) = await RunFusermountAsync("-u", Path).ConfigureAwait(false);
        while (code != 0 && output.Contains("Device or resource busy", StringComparison.Ordinal) && clock.Elapsed < BusyUnmountRetry)
        {
            await Task.Delay(100).ConfigureAwait(false);
            (code, output) = await RunFusermountAsync("-u", Path).ConfigureAwait(false);
        }
        if (code != 0)
        {
            throw new InvalidOperationException($"fusermount3 -u {Path} failed with code {code}: {output}");
        }

        return await WaitForExitAsync("unmounting").ConfigureAwait(false);
    }

    /// <summary>Sends <paramref name="signal"/> (such as <see cref="Sys.SIGTERM"/> or <see cref="Sys.SIGINT"/>) and waits up to 60 s for the child to exit.</summary>
    /// <returns>The child's exit code (128 + the signal if it did not handle it).</returns>
    /// <exception cref="TimeoutException">The child did not exit within 60 s.</exception>
    public async Task<int> SignalAsync(int signal)
    {
        if (!Process.HasExited)
        {
            var errno = Sys.Kill(Process.Id, signal);
            if (errno != 0 && errno != Sys.ESRCH)
            {
                throw new InvalidOperationException($"kill({Process.Id}, {signal}) failed: {Sys.ErrnoName(errno)}");
            }
        }

        return await WaitForExitAsync($"signal {signal}").ConfigureAwait(false);
    }

    /// <summary>
    /// SIGKILL, as a crash would, then <c>fusermount3 -uz</c> to detach the dead mount. The data
    /// and cache directories are left as the crash left them, for recovery tests.
    /// </summary>
    public void Kill()
    {
        try
        {
            if (!Process.HasExited)
            {
                _ = Sys.Kill(Process.Id, Sys.SIGKILL);
                Process.WaitForExit(ExitTimeout);
            }
        }
        catch (InvalidOperationException)
        {
            // The process was never started or is already disposed: nothing to kill.
        }

        if (IsMounted(Path))
        {
            _ = RunFusermountAsync("-uz", Path).GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// Unmounts cleanly if still mounted, kills the child if it does not exit, lazily unmounts any
    /// leftover, and deletes the directories the fixture created.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (!Process.HasExited && IsMounted(Path))
            {
                try
                {
                    await UnmountAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidOperationException or TimeoutException)
                {
                    // Busy or hung: the kill below and the lazy unmount take over.
                }
            }

            Kill();
        }
        finally
        {
            Live.TryRemove(this, out _);
            Process.Dispose();
            foreach (var directory in _ownedDirectories)
            {
                // The mount point is only removed when empty and unmounted; DeleteTree never
                // descends into another filesystem.
                TempDirectory.DeleteTree(directory);
            }
        }
    }

    private static string NewOwnedDirectory(string prefix, List<string> owned)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        owned.Add(path);
        return path;
    }

    private async Task<int> WaitForExitAsync(string after)
    {
        using var timeout = new CancellationTokenSource(ExitTimeout);
        try
        {
            await Process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Process.StartInfo.FileName} did not exit within {ExitTimeout.TotalSeconds:0} s after {after}.{OutputTail()}");
        }

        return Process.ExitCode;
    }

    private static async Task<(int Code, string Output)> RunFusermountAsync(string option, string path)
    {
        var start = new ProcessStartInfo("fusermount3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(option);
        start.ArgumentList.Add(path);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(FusermountTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            return (-1, $"fusermount3 {option} {path} did not finish within {FusermountTimeout.TotalSeconds:0} s");
        }

        return (process.ExitCode, (await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false)));
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private string OutputTail()
    {
        var output = Output;
        return output.Length == 0
            ? " It wrote nothing."
            : $" Its output{(output.Length > OutputTailLength ? " (tail)" : "")}:{System.Environment.NewLine}{output[Math.Max(0, output.Length - OutputTailLength)..]}";
    }
}
