using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs umount MOUNTPOINT</c>: flushes the mount (syncfs, so written data reaches the
/// filesystem while the kernel still serves it), unmounts it with <c>fusermount3 -u</c>, then
/// waits for the mount's process to commit and upload what it staged and exit, and reports how
/// it ended. Exit status 0 once the process exited cleanly; 1 otherwise (busy, not mounted,
/// the process failed or did not exit in time).
/// </summary>
internal static partial class UmountCommand
{
    public static int Run(string mountpoint, double timeoutSeconds)
    {
        var path = Path.GetFullPath(mountpoint);
        if (!MountCommand.IsMounted(path))
        {
            Console.Error.WriteLine($"truckeefs: {path} is not mounted");
            return Program.Failure;
        }
        var status = MountStatus.ForMountpoint(path) is { IsRunning: true } running ? running : null;
        var clock = Stopwatch.StartNew();

        if (Sync(path) is { } syncProblem) Console.Error.WriteLine($"truckeefs: syncfs on {path} failed ({syncProblem}); unmounting anyway: the mount commits what it staged when it stops");
        if (status is not null)
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"truckeefs: {path} is served by pid {status.Pid}: {Verb.Bytes(status.Statistics.StagedBytes)} staged, {status.Statistics.UploadQueue} files queued for upload"));

        var (code, output) = Fusermount(path);
        if (code != 0)
        {
            Console.Error.WriteLine($"truckeefs: fusermount3 -u {path} failed: {output.Trim()}");
            return Program.Failure;
        }
        if (status is null)
        {
            Console.Error.WriteLine($"truckeefs: unmounted {path}; no truckeefs process on this host is registered for it, so there is nothing to wait for");
            return 0;
        }

        var deadline = TimeSpan.FromSeconds(timeoutSeconds);
        while (status.IsRunning)
        {
            if (clock.Elapsed > deadline)
            {
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"truckeefs: unmounted {path}, but pid {status.Pid} is still committing after {deadline.TotalSeconds:0} s; it goes on in the background (truckeefs status shows it)"));
                return Program.Failure;
            }
            Thread.Sleep(100);
        }
        var final = MountStatus.Read(Path.Combine(status.CacheDirectory, MountStatus.FileName));
        var exit = final is { State: "stopped", Pid: var pid } && pid == status.Pid ? final.ExitCode : null;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"truckeefs: unmounted {path}; pid {status.Pid} committed its changes and exited {(exit is null ? "without reporting how" : $"with status {exit}")} after {clock.Elapsed.TotalSeconds:0.0} s"));
        return exit == 0 ? 0 : Program.Failure;
    }

    /// <summary>syncfs(2) on the mount, or why not.</summary>
    private static string? Sync(string path)
    {
        var fd = open(path, OpenReadOnly | OpenDirectory);
        if (fd < 0) return $"errno {Marshal.GetLastPInvokeError()}";
        try
        {
            return syncfs(fd) == 0 ? null : $"errno {Marshal.GetLastPInvokeError()}";
        }
        finally
        {
            _ = close(fd);
        }
    }

    private static (int Code, string Output) Fusermount(string path)
    {
        var start = new ProcessStartInfo("fusermount3") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("-u");
        start.ArgumentList.Add(path);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Result + error);
    }

    private const int OpenReadOnly = 0;
    private const int OpenDirectory = 0x10000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
