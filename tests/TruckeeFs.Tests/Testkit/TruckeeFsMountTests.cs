using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Testkit;

/// <summary>
/// The mount fixture's process and mount handling, exercised with a stand-in for the truckeefs
/// executable: a script that takes the same command line and serves the data directory through
/// bindfs in the foreground (bindfs and fuse3 must be installed: apt-get install -y bindfs fuse3).
/// </summary>
public sealed class TruckeeFsMountTests : IDisposable
{
    // Understands the CLI contract's "mount MNT --data-dir D --cache-dir C [args]" plus two test
    // switches: --fail MESSAGE exits 3 before mounting, --hang never mounts.
    private const string StandInScript = """
        #!/bin/bash
        set -e
        [ "$1" = mount ] || { echo "usage: $0 mount MOUNTPOINT --data-dir D --cache-dir C" >&2; exit 2; }
        mnt=$2; shift 2
        while [ $# -gt 0 ]; do
          case $1 in
            --data-dir) data=$2; shift 2 ;;
            --cache-dir) cache=$2; shift 2 ;;
            --fail) echo "refusing to mount: $2" >&2; exit 3 ;;
            --hang) echo $$ > "$cache/pid"; exec sleep 600 ;;
            *) echo "extra argument: $1"; shift ;;
          esac
        done
        echo "stand-in: STANDIN_GREETING=$STANDIN_GREETING"
        exec bindfs -f "$data" "$mnt"
        """;

    private readonly TempDirectory _scratch = TempDirectory.Create("mount-test");
    private readonly string _standIn;

    public TruckeeFsMountTests()
    {
        Assert.True(File.Exists("/usr/bin/bindfs"), "The fixture tests need bindfs: apt-get install -y bindfs fuse3");
        _standIn = Path.Combine(_scratch.Path, "truckeefs-standin");
        File.WriteAllText(_standIn, StandInScript.Replace("\r", "", StringComparison.Ordinal) + "\n");
        Assert.Equal(0, Sys.Chmod(_standIn, 0b111_101_101));
    }

    public void Dispose() => _scratch.Dispose();

    private TruckeeFsMountOptions Options(string? dataDir = null, string? cacheDir = null, string? mountPoint = null, params string[] extraArgs) => new()
    {
        Executable = _standIn,
        DataDir = dataDir,
        CacheDir = cacheDir,
        MountPoint = mountPoint,
        ExtraArgs = extraArgs,
    };

    private string Subdirectory(string name)
    {
        var path = Path.Combine(_scratch.Path, name);
        Directory.CreateDirectory(path);
        return path;
    }

    [Fact]
    public void TheDefaultExecutableIsTheCliInItsOwnBuildOutput()
    {
        // The test project references src/TruckeeFs.Cli, whose apphost is named truckeefs; it
        // runs from its own output folder, with its own dependencies beside it.
        var executable = new TruckeeFsMountOptions().Executable;
        var folder = Path.GetDirectoryName(executable)!;
        Assert.Equal("truckeefs", Path.GetFileName(executable));
        Assert.Contains($"{Path.DirectorySeparatorChar}TruckeeFs.Cli{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", executable, StringComparison.Ordinal);
        Assert.True(File.Exists(executable), $"{executable} is missing");
        Assert.True(File.Exists(Path.Combine(folder, "truckeefs.runtimeconfig.json")));
        Assert.True(File.Exists(Path.Combine(folder, "Microsoft.Extensions.Logging.Abstractions.dll")));
    }

    [Fact]
    public async Task MountsPassesArgumentsAndEnvironmentAndUnmountsCleanly()
    {
        var data = Subdirectory("data");

        // A space in the mount point: mountinfo escapes it as \040.
        var mountPoint = Path.Combine(_scratch.Path, "mount point");
        var options = new TruckeeFsMountOptions
        {
            Executable = _standIn,
            DataDir = data,
            MountPoint = mountPoint,
            ExtraArgs = ["--block-size", "64k"],
            Environment = new Dictionary<string, string?> { ["STANDIN_GREETING"] = "hello" },
            Verbose = true,
        };
        var mount = await TruckeeFsMount.StartAsync(options);
        await using (mount)
        {
            Assert.Equal(mountPoint, mount.Path);
            Assert.True(TruckeeFsMount.IsMounted(mountPoint));
            Assert.Equal("fuse", MountTable.FileSystemTypeAt(mountPoint));
            await File.WriteAllTextAsync(Path.Combine(mount.Path, "through-the-mount"), "x");
            Assert.True(File.Exists(Path.Combine(data, "through-the-mount")));

            Assert.Equal(0, await mount.UnmountAsync());
            Assert.False(TruckeeFsMount.IsMounted(mountPoint));
            Assert.True(mount.Process.HasExited);
            Assert.Contains("stand-in: STANDIN_GREETING=hello", mount.Output, StringComparison.Ordinal);
            Assert.Contains("extra argument: --block-size", mount.Output, StringComparison.Ordinal);
            Assert.Contains("extra argument: -v", mount.Output, StringComparison.Ordinal);
        }

        // Caller-owned directories survive; the fixture's own cache directory does not.
        Assert.True(Directory.Exists(mountPoint));
        Assert.True(File.Exists(Path.Combine(data, "through-the-mount")));
        Assert.False(Directory.Exists(mount.CacheDir));
    }

    [Fact]
    public async Task RemountingTheSameDataDirectoryShowsTheSameFiles()
    {
        var data = Subdirectory("data");
        var cache = Subdirectory("cache");
        await using (var first = await TruckeeFsMount.StartAsync(Options(data, cache)))
        {
            await File.WriteAllTextAsync(Path.Combine(first.Path, "kept"), "still here");
            Assert.Equal(0, await first.UnmountAsync());
        }

        await using var second = await TruckeeFsMount.StartAsync(Options(data, cache));
        Assert.Equal("still here", await File.ReadAllTextAsync(Path.Combine(second.Path, "kept")));
    }

    [Theory]
    [InlineData(Sys.SIGTERM)]
    [InlineData(Sys.SIGINT)]
    public async Task ASignalStopsTheDaemonWhichUnmounts(int signal)
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        Assert.Equal(0, await mount.SignalAsync(signal));
        Assert.False(TruckeeFsMount.IsMounted(mount.Path));
    }

    [Fact]
    public async Task KillLeavesNoMountAndKeepsTheData()
    {
        var data = Subdirectory("data");
        await using var mount = await TruckeeFsMount.StartAsync(Options(data));
        await File.WriteAllTextAsync(Path.Combine(mount.Path, "f"), "x");
        mount.Kill();
        Assert.True(mount.Process.HasExited);
        Assert.Equal(128 + Sys.SIGKILL, mount.Process.ExitCode);
        Assert.False(TruckeeFsMount.IsMounted(mount.Path));
        Assert.True(File.Exists(Path.Combine(data, "f")));
    }

    [Fact]
    public async Task DisposingUnmountsAndRemovesTheFixturesOwnDirectories()
    {
        var mount = await TruckeeFsMount.StartAsync(Options());
        var pid = mount.Process.Id;
        Assert.True(Directory.Exists(mount.DataDir));
        await mount.DisposeAsync();
        Assert.False(TruckeeFsMount.IsMounted(mount.Path));
        Assert.Equal(Sys.ESRCH, Sys.Kill(pid, 0));
        Assert.False(Directory.Exists(mount.Path));
        Assert.False(Directory.Exists(mount.DataDir));
        Assert.False(Directory.Exists(mount.CacheDir));
    }

    [Fact]
    public async Task DisposingABusyMountStillLeavesNoMount()
    {
        var data = Subdirectory("data");
        var mount = await TruckeeFsMount.StartAsync(Options(data));
        Assert.Equal(0, Sys.Open(Path.Combine(mount.Path, "held"), Sys.O_CREAT | Sys.O_RDWR, 0b110_100_100, out var fd));
        try
        {
            var busy = await Assert.ThrowsAsync<InvalidOperationException>(mount.UnmountAsync);
            Assert.Contains("fusermount3 -u", busy.Message, StringComparison.Ordinal);
            await mount.DisposeAsync();
            Assert.False(TruckeeFsMount.IsMounted(mount.Path));
        }
        finally
        {
            _ = Sys.Close(fd);
        }

        Assert.True(File.Exists(Path.Combine(data, "held")));
    }

    [Fact]
    public async Task AChildThatExitsBeforeMountingFailsTheStartWithItsOutput()
    {
        var start = TruckeeFsMount.StartAsync(Options(extraArgs: ["--fail", "no such backend"]));
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => start);
        Assert.Contains("exited with code 3 before mounting", failure.Message, StringComparison.Ordinal);
        Assert.Contains("refusing to mount: no such backend", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AChildThatNeverMountsIsKilledAfterTheTimeout()
    {
        var cache = Subdirectory("cache");
        var options = new TruckeeFsMountOptions { Executable = _standIn, CacheDir = cache, ExtraArgs = ["--hang"], MountTimeout = TimeSpan.FromSeconds(1) };
        var failure = await Assert.ThrowsAsync<TimeoutException>(() => TruckeeFsMount.StartAsync(options));
        Assert.Contains("was not mounted within 1 s", failure.Message, StringComparison.Ordinal);
        var pid = int.Parse(await File.ReadAllTextAsync(Path.Combine(cache, "pid")), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Sys.ESRCH, Sys.Kill(pid, 0));
    }

    [Fact]
    public async Task AMissingExecutableIsReportedByName()
    {
        var options = new TruckeeFsMountOptions { Executable = Path.Combine(_scratch.Path, "nope") };
        var failure = await Assert.ThrowsAsync<FileNotFoundException>(() => TruckeeFsMount.StartAsync(options));
        Assert.Contains("nope", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APlainDirectoryIsNotMounted()
    {
        Assert.False(TruckeeFsMount.IsMounted(_scratch.Path));
        Assert.Null(MountTable.FileSystemTypeAt(_scratch.Path));
        Assert.NotNull(MountTable.FileSystemTypeAt("/"));
        Assert.False(TruckeeFsMount.IsMounted("/"));
    }
}
