using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Servers;
using TruckeeFs.Tests.MultiHost;
using TruckeeFs.Tests.WriteBack;
using Xunit.Abstractions;
using static TruckeeFs.Tests.MultiHost.MountCluster;

namespace TruckeeFs.Tests.Production;

/// <summary>A MariaDB and a Redis server of their own for the restart tests, which stop them; those run one at a time.</summary>
public sealed class RestartableServers : IDisposable
{
    public MariaDbServer MariaDb { get; } = MariaDbServer.StartNew();

    public RedisServer Redis { get; } = RedisServer.StartNew();

    public void Dispose()
    {
        MariaDb.Dispose();
        Redis.Dispose();
    }
}

/// <summary>
/// MariaDB or Redis stopped and started again (same port, same data) under live mounts: every
/// operation answers within a bound set by net_timeout, with EIO when it needs the stopped
/// server, the same mounts serve everything again once it is back, and nothing closed before or
/// during the outage is lost.
/// </summary>
public sealed class ServerRestartTests(RestartableServers servers, ITestOutputHelper output) : IClassFixture<RestartableServers>
{
    private const int Block = 64 << 10;
    private const string NetTimeout = "3";

    /// <summary>
    /// The longest one operation may take while a server is down: the metadata store tries a
    /// connection twice and the Tahoe client retries for three net_timeouts, each attempt bounded
    /// by net_timeout, and Redis answers or fails within one.
    /// </summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(3 * int.Parse(NetTimeout, CultureInfo.InvariantCulture));

    [Fact]
    public async Task MariaDB_stopped_under_a_live_mount_fails_operations_with_EIO_in_bounded_time_and_the_same_mount_recovers_losing_nothing()
    {
        await using var fs = await ProductionFilesystem.CreateAsync(faults: true, mariaDb: servers.MariaDb, redis: servers.Redis);
        var written = new WrittenFiles();
        await using (var mount = await TruckeeFsMount.StartAsync(fs.Options(netTimeout: NetTimeout)))
        {
            var root = mount.Path;
            Assert.Equal(0, Sys.Mkdir($"{root}/listed", 0x1ED));
            // Closed just before the outage: their commits may still be queued when the server stops.
            for (var i = 0; i < 8; i++) Assert.Equal(0, written.Write(root, $"listed/before-{i}", 2 * Block + i));
            Assert.Equal(0, Sys.Open($"{root}/written-during", Sys.O_RDWR | Sys.O_CREAT, 0x1A4, out var openBefore));

            servers.MariaDb.Stop();
            var outage = Stopwatch.StartNew();
            int closed;
            try
            {
                Assert.Equal(Sys.EIO, Timed("stat of a name never looked up", () => Sys.Stat($"{root}/never-seen", out _)));
                Assert.Equal(Sys.EIO, Timed("open of a closed file", () => OpenAndClose($"{root}/listed/before-0", Sys.O_RDONLY)));
                Assert.Equal(Sys.EIO, Timed("create", () => OpenAndClose($"{root}/created-during", Sys.O_WRONLY | Sys.O_CREAT)));
                Assert.Equal(Sys.EIO, Timed("mkdir", () => Sys.Mkdir($"{root}/made-during", 0x1ED)));
                Assert.Equal(Sys.EIO, Timed("readdir", () => Sys.ReadDirectory($"{root}/listed", out _)));
                // Writes go to the staging area and close seals them: the commit waits for the server.
                closed = Timed("write and close of a file opened before", () => written.WriteAndClose(openBefore, "written-during", 3 * Block + 5));
                // A longer outage, through which the commit above is retried and heartbeats fail.
                Thread.Sleep(TimeSpan.FromSeconds(10) - outage.Elapsed);
                Assert.Equal(Sys.EIO, Timed("stat after 10 s of outage", () => Sys.Stat($"{root}/never-seen", out _)));
            }
            finally
            {
                servers.MariaDb.Start();
            }
            var restarted = Stopwatch.StartNew();
            // The failures named the server in the mount's log.
            Assert.Contains($"mysql 127.0.0.1:{servers.MariaDb.Port}/{fs.Database}", mount.Output, StringComparison.Ordinal);

            Assert.Equal(Sys.ENOENT, Sys.Stat($"{root}/never-seen", out _));
            Assert.Equal(0, written.Write(root, "created-after", Block + 1));
            Assert.Equal(0, Sys.Mkdir($"{root}/made-after", 0x1ED));
            Assert.Equal(0, Sys.ReadDirectory($"{root}/listed", out var entries));
            Assert.Equal(8, entries.Count(e => !e.IsDotOrDotDot));
            output.WriteLine($"the same mount served every operation again {restarted.Elapsed.TotalMilliseconds:0} ms after the restart");

            // The upload queue retries the commit of what was closed during the outage.
            Eventually(() => fs.Count("SELECT i.size FROM inodes i JOIN dirents d ON d.inode = i.id WHERE d.name = 'written-during'") == 3 * Block + 5,
                "the version closed during the outage is committed", seconds: 60);
            output.WriteLine($"close during the outage returned {Sys.ErrnoName(closed)}; its version was committed {restarted.Elapsed.TotalSeconds:0.0} s after the restart");

            // A server that hangs (it accepts connections but answers nothing) is waited for, never for longer than the bound.
            servers.MariaDb.Freeze();
            try
            {
                Assert.Equal(Sys.EIO, Timed("stat of a name never looked up, server frozen", () => Sys.Stat($"{root}/never-seen-either", out _)));
                Assert.Equal(Sys.EIO, Timed("mkdir, server frozen", () => Sys.Mkdir($"{root}/made-frozen", 0x1ED)));
            }
            finally
            {
                servers.MariaDb.Thaw();
            }
            Assert.Equal(Sys.ENOENT, Sys.Stat($"{root}/never-seen-either", out _));
            Assert.Equal(0, written.Write(root, "created-after-thaw", 2));
            var stopped = await mount.UnmountAsync();
            Assert.True(stopped == 0, $"the mount exited with {stopped}:\n{mount.Output}");
        }

        // A fresh cache directory: every byte comes from MariaDB and Tahoe.
        await using var fresh = await TruckeeFsMount.StartAsync(fs.Options(netTimeout: NetTimeout));
        written.Verify(fresh.Path);
        Assert.True(Directory.Exists($"{fresh.Path}/made-after"));
        Assert.False(File.Exists($"{fresh.Path}/created-during"));
        Assert.Equal(0, await fresh.UnmountAsync());
    }

    [Fact]
    public async Task Redis_stopped_under_live_mounts_leaves_operations_working_and_invalidation_and_commit_markers_work_again_after_its_restart()
    {
        var fs = await ProductionFilesystem.CreateAsync(faults: true, mariaDb: servers.MariaDb, redis: servers.Redis);
        await using var cluster = await MountCluster.StartAsync(filesystem: fs, netTimeout: NetTimeout, extra: ["--commit-wait-timeout", "60"]);
        var (a, b) = (cluster.A, cluster.B);
        var gateway = fs.Gateway!;
        WriteFile(On(a, "f"), "0123456789");
        var first = new string('1', 2 * Block);
        WriteFile(On(a, "shared"), first);
        TahoeBackedFilesystem.Fsync(On(a, "shared"));
        Eventually(() => ReadFile(On(b, "shared")) == first, "B reads the first version");
        Assert.Equal(0, Sys.Stat(On(b, "f"), out _));

        servers.Redis.Stop();
        try
        {
            Assert.Equal(Sys.ENOENT, Timed("stat of a name never looked up", () => Sys.Stat(On(a, "never-seen"), out _)));
            Assert.Equal(0, Timed("create, write and close", () => WriteAndClose(On(a, "during"), "written while Redis was down")));
            Assert.Equal(0, Timed("mkdir", () => Sys.Mkdir(On(a, "made-during"), 0x1ED)));
            Assert.Equal(0, Timed("readdir", () => Sys.ReadDirectory(a.Path, out _)));
            Assert.Equal(0, Timed("rename", () => Sys.Rename(On(a, "during"), On(a, "renamed-during"))));
            // Nothing could mark the commit pending, so A committed before close returned: B reads it.
            Assert.Equal("written while Redis was down", ReadFile(On(b, "renamed-during")));
        }
        finally
        {
            servers.Redis.Start();
        }
        using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.EndPoint);
        var filesystemId = fs.FilesystemId();
        var restarted = Stopwatch.StartNew();
        // Redis forgot everything: each mount records again which markers are its own.
        Eventually(() => Keys(redis, $"truckeefs:{filesystemId}:kv:session-coordinator:*") == 2, "both mounts record their identity again", seconds: 15);
        output.WriteLine($"both mounts recorded their identity again {restarted.Elapsed.TotalMilliseconds:0} ms after the restart");

        // B's kernel caches f's attributes for ten minutes: only an invalidation shows it a change.
        uint mode = 0x100;
        Eventually(() =>
        {
            mode = mode == 0x100 ? 0x180u : 0x100u;
            Assert.Equal(0, Sys.Chmod(On(a, "f"), mode));
            Thread.Sleep(100);
            return Sys.Stat(On(b, "f"), out var seen) == 0 && seen.Permissions == mode;
        }, "B is told of A's changes again", seconds: 15);
        output.WriteLine($"invalidations reached the other mount again {restarted.Elapsed.TotalMilliseconds:0} ms after the restart");

        // A commit pending on A when Redis restarts (and forgets every marker) is marked again,
        // so B's open still waits for it.
        gateway.Faults.FailureFraction = 1;
        var second = new string('2', 2 * Block);
        WriteFile(On(a, "shared"), second);
        servers.Redis.Stop();
        servers.Redis.Start();
        restarted.Restart();
        Assert.Equal(0, Sys.Stat(On(a, "shared"), out var shared));
        var marker = $"truckeefs:{filesystemId}:state:{shared.Ino.ToString(CultureInfo.InvariantCulture)}";
        Eventually(() => Reconnected(() => redis.GetDatabase().SetMembers(marker).Any(m => m.ToString().StartsWith("sync@", StringComparison.Ordinal))),
            "A marks its pending commit again", seconds: 15);
        output.WriteLine($"A's commit-pending marker was set again {restarted.Elapsed.TotalMilliseconds:0} ms after the restart");
        // B checks the marker through its own connection, which may still be reconnecting (an
        // open goes on without waiting when the coordinator cannot answer): B has reconnected
        // once it recorded its identity again.
        Eventually(() => Keys(redis, $"truckeefs:{filesystemId}:kv:session-coordinator:*") == 2, "both mounts record their identity again", seconds: 15);
        string? seenByB = null;
        var reading = new BlockingCall(() =>
        {
            seenByB = ReadFile(On(b, "shared"));
            return 0;
        });
        Assert.False(reading.Returns(TimeSpan.FromSeconds(2)), $"B's open did not wait for A's pending commit (read {seenByB?[..1]})");
        gateway.Faults.Clear();
        Assert.True(reading.Returns(TimeSpan.FromSeconds(40)), "B's open still waits after A's commit could land");
        Assert.Equal(second, seenByB);

        // A mount that dies after the restart is cleaned up after: it recorded again which
        // markers are its own (above), so B clears them instead of waiting a minute.
        gateway.Faults.FailureFraction = 1;
        WriteFile(On(a, "shared"), new string('3', 2 * Block));
        a.Kill();
        gateway.Faults.Clear();
        var clock = Stopwatch.StartNew();
        Assert.Equal(second, ReadFile(On(b, "shared")));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"B's open waited {clock.Elapsed.TotalSeconds:0.0} s for a dead mount's marker");
        output.WriteLine($"B's open after A was killed returned in {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(0, await b.UnmountAsync());
    }

    [Fact]
    public async Task Locks_whose_release_met_MariaDB_stopped_are_released_once_it_is_back()
    {
        var fs = await ProductionFilesystem.CreateAsync(mariaDb: servers.MariaDb, redis: servers.Redis);
        await using var cluster = await MountCluster.StartAsync(filesystem: fs, netTimeout: NetTimeout);
        var (a, b) = (cluster.A, cluster.B);
        WriteFile(On(a, "flocked"), "f");
        WriteFile(On(a, "ranged"), "r");
        Assert.Equal(0, Sys.Stat(On(a, "flocked"), out var flockedFile));
        Assert.Equal(0, Sys.Stat(On(a, "ranged"), out var rangedFile));
        bool Deferred(ulong inode) => a.Output.Contains($"inode {inode}: releasing a closed file's locks failed", StringComparison.Ordinal);
        Assert.Equal(0, Sys.Open(On(a, "flocked"), Sys.O_RDWR, 0, out var flocked));
        Assert.Equal(0, Sys.Open(On(a, "ranged"), Sys.O_RDWR, 0, out var ranged));
        Assert.Equal(0, Sys.Flock(flocked, Sys.LOCK_EX));
        var whole = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(ranged, Sys.F_SETLK, ref whole));
        Assert.Equal(0, Sys.Open(On(b, "flocked"), Sys.O_RDWR, 0, out var flockedOnB));
        Assert.Equal(0, Sys.Open(On(b, "ranged"), Sys.O_RDWR, 0, out var rangedOnB));

        servers.MariaDb.Stop();
        try
        {
            // Closing ends the locks, whatever the database says; the kernel sends the flock's
            // release after close returns.
            Timed("close of a flock holder", () => Sys.Close(flocked));
            Timed("close of a byte-range lock holder", () => Sys.Close(ranged));
            Eventually(() => Deferred(flockedFile.Ino) && Deferred(rangedFile.Ino), "A tried both releases and deferred them", seconds: 2 * Bound.TotalSeconds);
        }
        finally
        {
            servers.MariaDb.Start();
        }
        var restarted = Stopwatch.StartNew();
        Eventually(() => Sys.Flock(flockedOnB, Sys.LOCK_EX | Sys.LOCK_NB) == 0, "B takes the flock A's close released", seconds: 30);
        Eventually(() =>
        {
            var wanted = FileLock.Range(Sys.F_WRLCK, 0, 0);
            return Sys.FcntlLock(rangedOnB, Sys.F_SETLK, ref wanted) == 0;
        }, "B takes the byte-range lock A's close released", seconds: 30);
        output.WriteLine($"B took both locks {restarted.Elapsed.TotalMilliseconds:0} ms after the restart");
        Sys.Close(flockedOnB);
        Sys.Close(rangedOnB);
    }

    [Fact]
    public async Task A_release_retried_late_never_removes_a_lock_its_owner_took_again()
    {
        var fs = await ProductionFilesystem.CreateAsync(mariaDb: servers.MariaDb, redis: servers.Redis);
        // Heartbeats (which retry deferred releases) far enough apart that the lock is taken
        // again before the first one after the restart.
        await using var cluster = await MountCluster.StartAsync(filesystem: fs, netTimeout: NetTimeout, sessionHeartbeat: "5");
        var (a, b) = (cluster.A, cluster.B);
        WriteFile(On(a, "relocked"), "r");
        Assert.Equal(0, Sys.Open(On(a, "relocked"), Sys.O_RDWR, 0, out var first));
        var whole = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(first, Sys.F_SETLK, ref whole));
        Assert.Equal(0, Sys.Open(On(b, "relocked"), Sys.O_RDWR, 0, out var onB));

        servers.MariaDb.Stop();
        try
        {
            Timed("close of a byte-range lock holder", () => Sys.Close(first));
            Eventually(() => a.Output.Contains("releasing a closed file's locks failed", StringComparison.Ordinal), "A deferred the release");
        }
        finally
        {
            servers.MariaDb.Start();
        }
        // The same process (the same POSIX lock owner) locks the file again.
        Assert.Equal(0, Sys.Open(On(a, "relocked"), Sys.O_RDWR, 0, out var again));
        var relock = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(again, Sys.F_SETLK, ref relock));

        // Two heartbeats later the new lock still keeps B out.
        Thread.Sleep(TimeSpan.FromSeconds(11));
        var wanted = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(Sys.EAGAIN, Sys.FcntlLock(onB, Sys.F_SETLK, ref wanted));
        Assert.Equal(0, Sys.Close(again));
        Eventually(() =>
        {
            var retried = FileLock.Range(Sys.F_WRLCK, 0, 0);
            return Sys.FcntlLock(onB, Sys.F_SETLK, ref retried) == 0;
        }, "B takes the lock once A closes", seconds: 10);
        Sys.Close(onB);
    }

    private static int Keys(ConnectionMultiplexer redis, string pattern) =>
        Reconnected(() => redis.GetServer(redis.GetEndPoints()[0]).Keys(pattern: pattern).Count());

    /// <summary>What <paramref name="query"/> returns, or the type's default while the test's own client has not reconnected since the restart.</summary>
    private static T? Reconnected<T>(Func<T> query)
    {
        try
        {
            return query();
        }
        catch (RedisConnectionException)
        {
            return default;
        }
    }

    /// <summary>Runs one system call, checks it answered within <see cref="Bound"/>, and returns its errno.</summary>
    private int Timed(string operation, Func<int> call)
    {
        var clock = Stopwatch.StartNew();
        var errno = call();
        output.WriteLine($"{operation}: {Sys.ErrnoName(errno)} in {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(clock.Elapsed < Bound, $"{operation} took {clock.Elapsed.TotalSeconds:0.0} s, more than {Bound.TotalSeconds} s");
        return errno;
    }

    private static int OpenAndClose(string path, int flags)
    {
        var errno = Sys.Open(path, flags, 0x1A4, out var fd);
        return errno != 0 ? errno : Sys.Close(fd);
    }

    private static int WriteAndClose(string path, string text)
    {
        var errno = Sys.Open(path, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_TRUNC, 0x1A4, out var fd);
        if (errno != 0) return errno;
        errno = Sys.Write(fd, System.Text.Encoding.UTF8.GetBytes(text), out _);
        var closed = Sys.Close(fd);
        return errno != 0 ? errno : closed;
    }
}
