using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using TruckeeFs.Config;
using TruckeeFs.Fuse;
using TruckeeFs.Meta;
using TruckeeFs.Operations;
using VfsEngine = TruckeeFs.Vfs.Vfs;

namespace TruckeeFs.Cli;

/// <summary>
/// Mounts the filesystem and serves it until it is unmounted or the process is told to stop.
/// A clean stop commits every staged change before the process exits 0.
/// </summary>
internal static partial class MountCommand
{
    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, int verbosity)
    {
        if (Background.IsChild) Background.LeaveTerminalSession();
        Configuration configuration;
        try
        {
            configuration = Configuration.Load(configFile, flags, Environment.GetEnvironmentVariables());
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"truckeefs: {e.Message}");
            return Program.BadConfiguration;
        }

        var mountpoint = configuration.GetPath(ConfigKeys.Mount);
        if (mountpoint is null)
        {
            Console.Error.WriteLine("truckeefs: no mount point: give one (truckeefs mount /mnt/truckeefs) or set the mount key");
            return Program.BadConfiguration;
        }
        mountpoint = Path.GetFullPath(mountpoint);
        if (CheckMountpoint(mountpoint) is { } problem)
        {
            Console.Error.WriteLine($"truckeefs: {problem}");
            return Program.Failure;
        }

        var logWriter = configuration.GetPath(ConfigKeys.LogFile) is { } logFile
            ? new StreamWriter(logFile, append: true) { AutoFlush = false }
            : Console.Error;
        var level = verbosity switch { 0 => LogLevel.Warning, 1 => LogLevel.Information, 2 => LogLevel.Debug, _ => LogLevel.Trace };
        using var loggers = new TextLoggerProvider(logWriter, level);
        var log = loggers.CreateLogger("truckeefs");
        if (configuration.GetBoolean(ConfigKeys.TestCompatibility) && !Passed(CompatibilityTest.Run(), log)) return Program.Failure;
        try
        {
            return Serve(configuration, mountpoint, loggers, log);
        }
        catch (Exception e) when (e is MetaStoreException or Content.ContentStoreException or Coordination.CoordinatorException or FuseException or ConfigException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"truckeefs: {e.Message}");
            Log.Failed(log, e);
            return e is ConfigException ? Program.BadConfiguration : Program.Failure;
        }
    }

    private static int Serve(Configuration configuration, string mountpoint, ILoggerProvider loggers, ILogger log)
    {
        // Redis replies reach their callers through thread-pool threads, and MySql.Data blocks
        // the thread it runs on; with the pool's default minimum (one thread per core) a few
        // blocked FUSE requests starve Redis replies past their timeouts, because the pool adds
        // threads only about twice a second. Headroom from the start avoids that.
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(completionPorts, 64));

        var backends = Backends.OpenAsync(configuration, loggers.CreateLogger("Mirror"), mounting: true).GetAwaiter().GetResult();
        try
        {
            if (backends.UsesDataDirectory) Console.Error.WriteLine($"truckeefs: state in {backends.DataDirectory}");
            Console.Error.WriteLine($"truckeefs: metadata {backends.Meta.Description}; contents {backends.Content.Description}; coordination {backends.Coordinator.Description}; " +
                $"tree mirror {backends.Mirror.Description}; cache {backends.Options.CacheDirectory}; " +
                $"kernel caches attributes {backends.Options.AttributeTimeout:0.###} s, names {backends.Options.EntryTimeout:0.###} s");
            if (configuration.GetBoolean(ConfigKeys.TestIntegration))
            {
                var results = IntegrationTest.RunAsync(backends).GetAwaiter().GetResult();
                // Every backend's line, not just the first failure.
                if (!results.Select(result => Passed(result, log)).ToList().TrueForAll(passed => passed)) return Program.Failure;
            }
            // Before anything can queue a mirror update: those would meet a tree already ahead of them.
            if (backends.Mirror.NeedsResync) ResyncMirror(backends, log);
            var vfs = new VfsEngine(backends.Meta, backends.Content, backends.Coordinator, backends.Mirror, backends.Options, loggers.CreateLogger("Vfs"));
            vfs.RecoverAsync().GetAwaiter().GetResult();

            var options = (configuration.GetText(ConfigKeys.MountOptions) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            // Root mounts are for everyone on the host, like any system filesystem.
            if (Environment.IsPrivilegedProcess && !options.Contains("allow_other")) options.Add("allow_other");
            if (!options.Any(o => o.StartsWith("subtype=", StringComparison.Ordinal))) options.Add("subtype=truckeefs");

            var fuseLog = loggers.CreateLogger("Fuse");
            var adapter = new FuseAdapter(vfs, loggers.CreateLogger("FuseAdapter"));
            using var session = new FuseSession(adapter, options, message => Log.Fuse(fuseLog, message));
            using var status = new StatusWriter(mountpoint, backends, vfs.Statistics, () => adapter.KernelProtocol);
            vfs.AttachKernel(new KernelNotifier(session));
            vfs.StartSessionAsync(mountpoint).GetAwaiter().GetResult();
            // Handled before the mount appears: a signal that comes as soon as it does must stop it
            // cleanly too (an exit requested before the loop runs ends it at once).
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            session.Mount(mountpoint);
            string? notReady = null;
            var served = false;
            // The loop below serves the kernel on this thread; whether the mount answers (and the
            // functionality test) can only be seen from another one.
            var readiness = new Thread(() => notReady = AwaitReady(configuration, mountpoint, session, status, adapter, () => Volatile.Read(ref served), log))
            {
                IsBackground = true,
                Name = "truckeefs-ready",
            };
            readiness.Start();
            var result = session.Run();
            Volatile.Write(ref served, true);
            Log.LoopEnded(log, result);
            readiness.Join();

            // Every file is closed once the kernel let go of the mount; commit what is still staged.
            status.Update("stopping");
            SystemdNotify.Send("STOPPING=1");
            vfs.DisposeAsync().AsTask().GetAwaiter().GetResult();
            session.Unmount();
            var exitCode = notReady is null ? 0 : Program.Failure;
            status.Stopped(exitCode);
            Console.Error.WriteLine(notReady is null ? "truckeefs: unmounted cleanly" : $"truckeefs: unmounted: {notReady}");
            return exitCode;

            void Stop(PosixSignalContext context)
            {
                context.Cancel = true;
                Log.Stopping(log, context.Signal.ToString());
                session.Exit();
            }
        }
        finally
        {
            backends.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// Waits until the mount answers, runs the functionality test when enabled, then announces
    /// the mount (and lets a background start's parent and systemd go). Returns why the mount is
    /// not ready, having stopped the loop, or null (also when the loop ended first: stopped by a
    /// signal or an unmount, which the loop's own result reports).
    /// </summary>
    private static string? AwaitReady(Configuration configuration, string mountpoint, FuseSession session, StatusWriter status, FuseAdapter adapter, Func<bool> loopEnded, ILogger log)
    {
        // The kernel sends INIT as soon as it mounts; once we answered it, the loop serves
        // requests. Probing the mount point instead would make an unmount that comes at once
        // fail with EBUSY while the probe is in flight.
        while (adapter.KernelProtocol is null)
        {
            if (loopEnded()) return null;
            Thread.Sleep(5);
        }
        if (configuration.GetBoolean(ConfigKeys.TestFunctionality) && !Passed(FunctionalityTest.Run(mountpoint), log))
        {
            session.Exit();
            return "the functionality self-test failed";
        }
        status.Update("mounted");
        Console.Error.WriteLine($"truckeefs: mounted at {mountpoint}, kernel FUSE protocol {adapter.KernelProtocol} (stop with: truckeefs umount {mountpoint} or fusermount3 -u {mountpoint})");
        SystemdNotify.Send($"READY=1\nSTATUS=mounted at {mountpoint}\nMAINPID={Environment.ProcessId}");
        if (Background.IsChild) Background.Detach();
        return null;
    }

    /// <summary>
    /// The last mount with this cache directory stopped with tree mirror updates not applied:
    /// brings the Tahoe tree back into agreement before serving. A failure is reported and the
    /// mount goes on; the marker stays, so the next mount tries again.
    /// </summary>
    private static void ResyncMirror(Backends backends, ILogger log)
    {
        Console.Error.WriteLine("truckeefs: the last mount with this cache directory stopped with tree mirror updates not applied: resynchronising the tree mirror under the rootcap");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var report = backends.Mirror.ResyncAsync(backends.Meta, repair: true).GetAwaiter().GetResult();
            foreach (var difference in report.Differences) Log.MirrorDifference(log, difference.Kind, difference.Path, difference.Detail);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"truckeefs: tree mirror resynchronised in {clock.Elapsed.TotalSeconds:0.0} s: {report.Differences.Count} differences, {report.Remaining.Count} left; " +
                $"{report.DirectoriesListed} directories listed, {report.EntriesChecked} entries checked"));
        }
        catch (Exception e) when (e is Content.ContentStoreException or MetaStoreException)
        {
            Console.Error.WriteLine($"truckeefs: resynchronising the tree mirror failed, so it may differ from the filesystem until the next mount or `truckeefs resync`: {e.Message}");
        }
    }

    /// <summary>Reports a start-up self-test: a failure on standard error, a pass in the log (-v); true when it passed.</summary>
    private static bool Passed(SelfTestResult result, ILogger log)
    {
        if (result.Passed)
            Log.SelfTestPassed(log, result.Name, result.Detail);
        else
            Console.Error.WriteLine($"truckeefs: self-test {result.Name} failed, so the filesystem is not mounted: {result.Detail} (the {ConfigKeyFor(result.Name)} key turns this test off)");
        return result.Passed;
    }

    private static string ConfigKeyFor(string test) =>
        test.StartsWith("integration", StringComparison.Ordinal) ? ConfigKeys.TestIntegration.Name
        : test == "functionality" ? ConfigKeys.TestFunctionality.Name : ConfigKeys.TestCompatibility.Name;

    /// <summary>Why the mount point cannot be used, or null.</summary>
    private static string? CheckMountpoint(string mountpoint)
    {
        if (IsMounted(mountpoint)) return $"{mountpoint} is already a mount point (unmount it first: fusermount3 -u {mountpoint})";
        if (!Directory.Exists(mountpoint))
            return File.Exists(mountpoint) ? $"mount point {mountpoint} is a file, not a directory" : $"mount point {mountpoint} does not exist (create it: mkdir -p {mountpoint})";
        try
        {
            if (Directory.EnumerateFileSystemEntries(mountpoint).Any()) return $"mount point {mountpoint} is not empty";
        }
        catch (UnauthorizedAccessException)
        {
            return $"mount point {mountpoint} is not readable";
        }
        return null;
    }

    /// <summary>Whether /proc/self/mountinfo lists <paramref name="path"/> as a mount point.</summary>
    internal static bool IsMounted(string path) => MountTable.DeviceAt(path) is not null;

    private static partial class Log
    {
        // The one-line reason is already on standard error; the details are for -vv.
        [LoggerMessage(3001, LogLevel.Debug, "truckeefs failed")]
        public static partial void Failed(ILogger logger, Exception exception);

        [LoggerMessage(3002, LogLevel.Information, "stopping on {Signal}")]
        public static partial void Stopping(ILogger logger, string signal);

        [LoggerMessage(3003, LogLevel.Information, "FUSE loop ended ({Result})")]
        public static partial void LoopEnded(ILogger logger, int result);

        [LoggerMessage(3004, LogLevel.Warning, "libfuse: {Message}")]
        public static partial void Fuse(ILogger logger, string message);

        [LoggerMessage(3005, LogLevel.Information, "self-test {Name} passed: {Detail}")]
        public static partial void SelfTestPassed(ILogger logger, string name, string detail);

        [LoggerMessage(3006, LogLevel.Information, "tree mirror resync: {Kind} {Path}: {Detail}")]
        public static partial void MirrorDifference(ILogger logger, string kind, string path, string detail);
    }
}
