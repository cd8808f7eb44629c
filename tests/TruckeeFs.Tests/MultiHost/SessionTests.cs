using System.Diagnostics;
using System.Globalization;
using System.Text;
using TruckeeFs.Testing.Posix;
using static TruckeeFs.Tests.MultiHost.MountCluster;

namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// Each mount is a session in the metadata; the survivors clean up after a mount that dies
/// (its process gone) or goes silent (heartbeats stop for the session timeout): its locks and
/// open-file references go, and files it kept alive are reclaimed. A file unlinked on one mount
/// while open on another lives until the other closes it.
/// </summary>
public sealed class SessionTests : IAsyncLifetime
{
    private const int SessionTimeoutSeconds = 3;

    private MountCluster _cluster = null!;

    public async Task InitializeAsync() =>
        _cluster = await MountCluster.StartAsync(sessionTimeout: SessionTimeoutSeconds.ToString(CultureInfo.InvariantCulture));

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Each_mount_registers_a_session_and_a_clean_unmount_removes_it()
    {
        Assert.Equal(2, Sessions());
        var mountpoints = Rows("SELECT CONCAT(host, ' ', pid, ' ', CAST(mountpoint AS CHAR)) FROM sessions");
        Assert.Contains($"{Environment.MachineName} {_cluster.A.Process.Id} {_cluster.A.Path}", mountpoints);
        Assert.Contains($"{Environment.MachineName} {_cluster.B.Process.Id} {_cluster.B.Path}", mountpoints);
        var heartbeat = _cluster.Filesystem.Count("SELECT MAX(heartbeat) FROM sessions");
        Eventually(() => _cluster.Filesystem.Count("SELECT MAX(heartbeat) FROM sessions") > heartbeat, "the heartbeats move");

        Assert.Equal(0, await _cluster.B.UnmountAsync());
        Assert.Equal(1, Sessions());
    }

    [Fact]
    public void A_file_unlinked_on_one_mount_stays_usable_where_it_is_open_until_closed_there()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        WriteFile(On(a, "doomed"), "before ");
        var onB = OpenReadWrite(On(b, "doomed"));
        Assert.Equal(0, Sys.FStat(onB, out var info));

        Assert.Equal(0, Sys.Unlink(On(a, "doomed")));
        Eventually(() => Sys.Stat(On(b, "doomed"), out _) == Sys.ENOENT, "B no longer finds the name");
        Assert.Equal(1, Inodes(info.Ino));

        // Still readable and writable through B's descriptor.
        Assert.Equal(0, Sys.PWrite(onB, "after"u8, 7, out _));
        Assert.Equal(0, Sys.Fsync(onB));
        var buffer = new byte[64];
        Assert.Equal(0, Sys.PRead(onB, buffer, 0, out var count));
        Assert.Equal("before after", Encoding.UTF8.GetString(buffer, 0, count));
        Assert.Equal(0, Sys.FStat(onB, out var nameless));
        Assert.Equal(0UL, nameless.Nlink);
        Assert.Equal(1, Inodes(info.Ino));

        Assert.Equal(0, Sys.Close(onB));
        Eventually(() => Inodes(info.Ino) == 0, "B's close reclaims the nameless inode");
    }

    [Fact]
    public void A_killed_mount_loses_its_locks_and_open_files_to_the_survivor()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        WriteFile(On(a, "locked"), "x");
        WriteFile(On(a, "kept"), "y");
        var lockedOnA = OpenReadWrite(On(a, "locked"));
        var keptOnA = OpenReadWrite(On(a, "kept"));
        Assert.Equal(0, Sys.FStat(keptOnA, out var kept));
        Assert.Equal(0, Sys.Flock(lockedOnA, Sys.LOCK_EX));
        var range = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(lockedOnA, Sys.F_SETLK, ref range));

        var lockedOnB = OpenReadWrite(On(b, "locked"));
        var flockWaits = new BlockingCall(() => Sys.Flock(lockedOnB, Sys.LOCK_EX));
        var rangeWaits = new BlockingCall(() =>
        {
            var wanted = FileLock.Range(Sys.F_WRLCK, 0, 1);
            return Sys.FcntlLock(lockedOnB, Sys.F_SETLKW, ref wanted);
        });
        Assert.Equal(0, Sys.Unlink(On(b, "kept")));
        Assert.False(flockWaits.Returns(TimeSpan.FromMilliseconds(500)));
        Assert.Equal(1, Inodes(kept.Ino));

        // The host of A dies: nothing of it closes its files or unlocks.
        a.Kill();
        Assert.True(flockWaits.Returns(TimeSpan.FromSeconds(10)), "B's flock should be granted once A is found dead");
        Assert.True(rangeWaits.Returns(TimeSpan.FromSeconds(10)), "B's fcntl lock should be granted once A is found dead");
        Assert.Equal((0, 0), (flockWaits.Result, rangeWaits.Result));
        Eventually(() => Inodes(kept.Ino) == 0, "the survivor reclaims the file only A kept alive");
        Assert.Equal(1, Sessions());
        Sys.Close(lockedOnA);
        Sys.Close(keptOnA);
        Sys.Close(lockedOnB);
    }

    [Fact]
    public void A_silent_mount_is_declared_dead_after_the_session_timeout_and_registers_again_when_it_wakes()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        WriteFile(On(a, "silent"), "x");
        var onA = OpenReadWrite(On(a, "silent"));
        Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_EX));
        var onB = OpenReadWrite(On(b, "silent"));

        // Stopped, A's process still exists: only its silence can tell B it is gone.
        Assert.Equal(0, Sys.Kill(a.Process.Id, Sys.SIGSTOP));
        var silent = Stopwatch.StartNew();
        try
        {
            var waits = new BlockingCall(() => Sys.Flock(onB, Sys.LOCK_EX));
            Assert.False(waits.Returns(TimeSpan.FromSeconds(SessionTimeoutSeconds - 1.5)), "B must not take the lock before A's session times out");
            Assert.True(waits.Returns(TimeSpan.FromSeconds(SessionTimeoutSeconds + 10)), "B's flock should be granted after A's session timed out");
            Assert.Equal(0, waits.Result);
            Assert.True(silent.Elapsed >= TimeSpan.FromSeconds(SessionTimeoutSeconds - 0.5), $"granted after {silent.Elapsed}");
            Assert.Equal(1, Sessions());
        }
        finally
        {
            Sys.Kill(a.Process.Id, Sys.SIGCONT);
        }

        // Awake again, A finds its session gone and registers anew.
        Eventually(() => Sessions() == 2, "A registers again");
        Eventually(() => a.Output.Contains("declared this mount", StringComparison.Ordinal), "A logs that it was declared dead");
        Assert.Equal(0, Sys.Stat(On(a, "silent"), out _));
        Sys.Close(onA);
        Sys.Close(onB);
    }

    private long Sessions() => _cluster.Filesystem.Count("SELECT COUNT(*) FROM sessions");

    private long Inodes(ulong inode) => _cluster.Filesystem.Count($"SELECT COUNT(*) FROM inodes WHERE id = {inode}");

    private List<string> Rows(string sql)
    {
        using var connection = new MySql.Data.MySqlClient.MySqlConnection(_cluster.Filesystem.ConnectionString);
        connection.Open();
        using var command = new MySql.Data.MySqlClient.MySqlCommand(sql, connection);
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read()) rows.Add(reader.GetString(0));
        return rows;
    }
}
