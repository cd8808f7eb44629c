using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using TruckeeFs.Config;
using TruckeeFs.Fuse;
using TruckeeFs.Meta;
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
        // StackExchange.Redis 1.x completes its operations on thread-pool threads, and MySql.Data
        // blocks the thread it runs on; with the pool's default minimum (one thread per core) a
        // few blocked FUSE requests starve Redis replies past their timeouts, because the pool
        // adds threads only about twice a second. Headroom from the start avoids that.
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(completionPorts, 64));

        var backends = Backends.OpenAsync(configuration, loggers.CreateLogger("Mirror")).GetAwaiter().GetResult();
        try
        {
            if (backends.UsesDataDirectory) Console.Error.WriteLine($"truckeefs: state in {backends.DataDirectory}");
            Console.Error.WriteLine($"truckeefs: metadata {backends.Meta.Description}; contents {backends.Content.Description}; coordination {backends.Coordinator.Description}; " +
                $"tree mirror {backends.Mirror.Description}; cache {backends.Options.CacheDirectory}; " +
                $"kernel caches attributes {backends.Options.AttributeTimeout:0.###} s, names {backends.Options.EntryTimeout:0.###} s");
            var vfs = new VfsEngine(backends.Meta, backends.Content, backends.Coordinator, backends.Mirror, backends.Options, loggers.CreateLogger("Vfs"));
            vfs.RecoverAsync().GetAwaiter().GetResult();

            var options = (configuration.GetText(ConfigKeys.MountOptions) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            // Root mounts are for everyone on the host, like any system filesystem.
            if (Environment.IsPrivilegedProcess && !options.Contains("allow_other")) options.Add("allow_other");
            if (!options.Any(o => o.StartsWith("subtype=", StringComparison.Ordinal))) options.Add("subtype=truckeefs");

            var fuseLog = loggers.CreateLogger("Fuse");
            using var session = new FuseSession(new FuseAdapter(vfs, loggers.CreateLogger("FuseAdapter")), options, message => Log.Fuse(fuseLog, message));
            vfs.AttachKernel(new KernelNotifier(session));
            vfs.StartSessionAsync(mountpoint).GetAwaiter().GetResult();
            session.Mount(mountpoint);
            Console.Error.WriteLine($"truckeefs: mounted at {mountpoint} (stop with: fusermount3 -u {mountpoint})");
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            var result = session.Run();
            Log.LoopEnded(log, result);

            // Every file is closed once the kernel let go of the mount; commit what is still staged.
            vfs.DisposeAsync().AsTask().GetAwaiter().GetResult();
            session.Unmount();
            Console.Error.WriteLine("truckeefs: unmounted cleanly");
            return 0;

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
    internal static bool IsMounted(string path)
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4 && Unescape(fields[4]) == path) return true;
        }
        return false;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as octal.</summary>
    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);

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
    }
}
