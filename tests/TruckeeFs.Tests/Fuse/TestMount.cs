using System.Collections.Concurrent;
using System.Diagnostics;
using TruckeeFs.Fuse;

namespace TruckeeFs.Tests.Fuse;

/// <summary>
/// A filesystem (by default a <see cref="MemoryFileSystem"/>) mounted on a fresh temporary directory, served by
/// <see cref="FuseSession.Run"/> on its own thread. Disposing always unmounts and removes the
/// directory, and never hangs: a loop that does not end is abandoned after a lazy unmount.
/// </summary>
internal sealed class TestMount : IDisposable
{
    public static readonly string[] Options = ["fsname=fusetest", "default_permissions"];

    private readonly DirectoryInfo _directory;

    public TestMount(bool readdirPlus = true, int maxThreads = 16)
        : this(new MemoryFileSystem(readdirPlus), maxThreads)
    {
    }

    public TestMount(FuseOperations operations, int maxThreads = 16)
    {
        _directory = Directory.CreateTempSubdirectory("fusetest-");
        Operations = operations;
        Session = new FuseSession(operations, Options, Log.Enqueue);
        try
        {
            Session.Mount(Path);
        }
        catch
        {
            Session.Dispose();
            _directory.Delete();
            throw;
        }

        Loop = Task.Factory.StartNew(() => Session.Run(maxThreads), TaskCreationOptions.LongRunning);
    }

    public FuseOperations Operations { get; }

    public MemoryFileSystem FileSystem => (MemoryFileSystem)Operations;

    public FuseSession Session { get; }

    public Task<int> Loop { get; }

    public ConcurrentQueue<string> Log { get; } = new();

    public string Path => _directory.FullName;

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public bool LoopEnds(TimeSpan timeout) => Loop.Wait(timeout);

    public void Dispose()
    {
        Session.Exit();
        var ended = LoopEnds(TimeSpan.FromSeconds(10));
        if (IsMounted(Path))
        {
            LazyUnmount(Path);
        }

        if (ended || LoopEnds(TimeSpan.FromSeconds(5)))
        {
            Session.Dispose();
        }

        try
        {
            _directory.Delete();
        }
        catch (IOException)
        {
            // Still busy or mounted: leave the empty directory rather than fail the test here.
        }
    }

    /// <summary>Whether <paramref name="path"/> is a mountpoint in this process's mount namespace.</summary>
    public static bool IsMounted(string path) => MountInfo(path) is not null;

    /// <summary>The /proc/self/mountinfo fields of the mount on <paramref name="path"/>, if any.</summary>
    public static string[]? MountInfo(string path) =>
        File.ReadLines("/proc/self/mountinfo").Select(line => line.Split(' ')).LastOrDefault(fields => fields[4] == path);

    public static int Fusermount(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("fusermount3", arguments) { UseShellExecute = false })!;
        if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            process.Kill();
            return -1;
        }

        return process.ExitCode;
    }

    private static void LazyUnmount(string path) => Fusermount("-u", "-z", path);
}
