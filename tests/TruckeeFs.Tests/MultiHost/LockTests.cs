using System.Diagnostics;
using TruckeeFs.Testing.Posix;
using static TruckeeFs.Tests.MultiHost.MountCluster;

namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// flock(2) and fcntl(2) locks hold between mounts: taken through one, they stop conflicting
/// requests through the other (failing or waiting), and blocked requests go ahead when the
/// holder unlocks or closes. One test process holds descriptors on both mounts; for POSIX
/// locks that is the same process twice, which the mounts, like two hosts, tell apart.
/// </summary>
public sealed class LockTests : IAsyncLifetime
{
    private static readonly TimeSpan StillBlocked = TimeSpan.FromMilliseconds(700);
    private static readonly TimeSpan Granted = TimeSpan.FromSeconds(5);

    private MountCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await MountCluster.StartAsync();

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public void Flock_conflicts_between_mounts_and_a_blocked_request_wakes_when_released()
    {
        var (onA, onB) = SharedFile("flocked");
        try
        {
            Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_EX));
            Assert.Equal(Sys.EAGAIN, Sys.Flock(onB, Sys.LOCK_EX | Sys.LOCK_NB));
            Assert.Equal(Sys.EAGAIN, Sys.Flock(onB, Sys.LOCK_SH | Sys.LOCK_NB));

            var waiting = Blocking(() => Sys.Flock(onB, Sys.LOCK_EX));
            Assert.False(waiting.Returns(StillBlocked), "B's flock should wait while A holds the lock");
            Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_UN));
            Assert.True(waiting.Returns(Granted), "B's flock should be granted once A unlocks");
            Assert.Equal(0, waiting.Result);

            // Woken by the release announcement, not by the once-a-second retry (which alone
            // would take half a second in the median): the lock passes back and forth.
            var delays = new List<double>();
            for (var round = 0; round < 7; round++)
            {
                var (holder, waiter) = round % 2 == 0 ? (onB, onA) : (onA, onB);
                var next = Blocking(() => Sys.Flock(waiter, Sys.LOCK_EX));
                Assert.False(next.Returns(TimeSpan.FromMilliseconds(200)));
                var released = Stopwatch.StartNew();
                Assert.Equal(0, Sys.Flock(holder, Sys.LOCK_UN));
                Assert.True(next.Returns(Granted));
                delays.Add(released.Elapsed.TotalMilliseconds);
            }
            Assert.True(delays.Order().ElementAt(delays.Count / 2) < 300, $"grant delays after release: {string.Join(", ", delays.Select(d => $"{d:0} ms"))}");
            // The last round's waiter, A, holds it now.
            Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_UN));

            // Shared locks coexist; an exclusive one waits for both to go.
            Assert.Equal(0, Sys.Flock(onB, Sys.LOCK_SH));
            Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_SH | Sys.LOCK_NB));
            Assert.Equal(Sys.EAGAIN, Sys.Flock(onA, Sys.LOCK_EX | Sys.LOCK_NB));
        }
        finally
        {
            Sys.Close(onA);
            Sys.Close(onB);
        }
    }

    [Fact]
    public void Flock_is_released_by_the_last_close_of_the_open_file_description()
    {
        var (onA, onB) = SharedFile("closing");
        Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_EX));
        var copy = Sys.Dup(onA);
        Assert.Equal(0, Sys.Close(onA));
        // The duplicate shares the open file description, which still holds the lock.
        Assert.Equal(Sys.EAGAIN, Sys.Flock(onB, Sys.LOCK_EX | Sys.LOCK_NB));

        var waiting = Blocking(() => Sys.Flock(onB, Sys.LOCK_EX));
        Assert.False(waiting.Returns(StillBlocked));
        Assert.Equal(0, Sys.Close(copy));
        // The kernel sends the release of the description after close returns, in the background.
        Assert.True(waiting.Returns(Granted * 3), "the last close should release the flock");
        Assert.Equal(0, waiting.Result);
        Sys.Close(onB);
    }

    [Fact]
    public void Fcntl_byte_ranges_conflict_split_and_report_their_holder_between_mounts()
    {
        var (onA, onB) = SharedFile("ranges");
        try
        {
            var whole = FileLock.Range(Sys.F_WRLCK, 0, 100);
            Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref whole));

            // F_GETLK through B reports A's lock; A's process means nothing on B's host: pid 0.
            var probe = FileLock.Range(Sys.F_RDLCK, 50, 10);
            Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_GETLK, ref probe));
            Assert.Equal((Sys.F_WRLCK, 0L, 100L, 0), (probe.Type, probe.Start, probe.Length, probe.Pid));

            var beyond = FileLock.Range(Sys.F_WRLCK, 100, 10);
            Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_SETLK, ref beyond));
            var inside = FileLock.Range(Sys.F_RDLCK, 50, 1);
            Assert.Equal(Sys.EAGAIN, Sys.FcntlLock(onB, Sys.F_SETLK, ref inside));

            var waiting = Blocking(() =>
            {
                var wanted = FileLock.Range(Sys.F_RDLCK, 50, 1);
                return Sys.FcntlLock(onB, Sys.F_SETLKW, ref wanted);
            });
            Assert.False(waiting.Returns(StillBlocked), "B's F_SETLKW should wait");

            // Unlocking the first 60 bytes splits nothing here but leaves A holding 60..99.
            var unlockHead = FileLock.Range(Sys.F_UNLCK, 0, 60);
            Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref unlockHead));
            Assert.True(waiting.Returns(Granted), "B's F_SETLKW should be granted once A unlocks those bytes");
            Assert.Equal(0, waiting.Result);

            var tail = FileLock.Range(Sys.F_WRLCK, 70, 1);
            Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_GETLK, ref tail));
            Assert.Equal((Sys.F_WRLCK, 60L, 40L), (tail.Type, tail.Start, tail.Length));

            // A's write lock split by unlocking its middle: both ends stay held.
            var middle = FileLock.Range(Sys.F_UNLCK, 80, 10);
            Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref middle));
            var freed = FileLock.Range(Sys.F_WRLCK, 85, 1);
            Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_GETLK, ref freed));
            Assert.Equal(Sys.F_UNLCK, freed.Type);
            var end = FileLock.Range(Sys.F_WRLCK, 95, 1);
            Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_GETLK, ref end));
            Assert.Equal((Sys.F_WRLCK, 90L, 10L), (end.Type, end.Start, end.Length));

            // A lock to the end of the file (length 0) conflicts with anything beyond.
            var toEnd = FileLock.Range(Sys.F_WRLCK, 1000, 0);
            Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref toEnd));
            var far = FileLock.Range(Sys.F_RDLCK, 1L << 40, 1);
            Assert.Equal(Sys.EAGAIN, Sys.FcntlLock(onB, Sys.F_SETLK, ref far));
        }
        finally
        {
            Sys.Close(onA);
            Sys.Close(onB);
        }
    }

    [Fact]
    public void Any_close_by_the_owner_releases_its_fcntl_locks_on_the_file()
    {
        var (onA, onB) = SharedFile("posix-close");
        var other = OpenReadWrite(On(_cluster.A, "posix-close"));
        var held = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref held));
        var attempt = FileLock.Range(Sys.F_WRLCK, 0, 1);
        Assert.Equal(Sys.EAGAIN, Sys.FcntlLock(onB, Sys.F_SETLK, ref attempt));

        // POSIX: closing any descriptor of the file drops the process's locks on it.
        Assert.Equal(0, Sys.Close(other));
        attempt = FileLock.Range(Sys.F_WRLCK, 0, 1);
        Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_SETLK, ref attempt));
        Sys.Close(onA);
        Sys.Close(onB);
    }

    [Fact]
    public void An_open_file_description_lock_goes_with_the_last_close_of_the_description()
    {
        var (onA, onB) = SharedFile("ofd");
        var held = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_OFD_SETLK, ref held));
        var attempt = FileLock.Range(Sys.F_WRLCK, 0, 1);
        Assert.Equal(Sys.EAGAIN, Sys.FcntlLock(onB, Sys.F_OFD_SETLK, ref attempt));

        var waiting = Blocking(() =>
        {
            var wanted = FileLock.Range(Sys.F_WRLCK, 0, 1);
            return Sys.FcntlLock(onB, Sys.F_OFD_SETLKW, ref wanted);
        });
        Assert.False(waiting.Returns(StillBlocked));
        Assert.Equal(0, Sys.Close(onA));
        Assert.True(waiting.Returns(Granted), "closing the description should release its lock");
        Assert.Equal(0, waiting.Result);
        Sys.Close(onB);
    }

    [Fact]
    public void A_killed_holder_process_loses_its_locks()
    {
        var path = On(_cluster.A, "killed");
        WriteFile(path, "");
        // -o: the command (sleep) does not inherit the locked descriptor; flock(1) itself holds it.
        using var holder = Process.Start(new ProcessStartInfo("flock", ["-x", "-o", path, "sleep", "600"]) { UseShellExecute = false })!;
        var onB = OpenReadWrite(On(_cluster.B, "killed"));
        Eventually(() =>
        {
            var busy = Sys.Flock(onB, Sys.LOCK_EX | Sys.LOCK_NB) == Sys.EAGAIN;
            if (!busy) Sys.Flock(onB, Sys.LOCK_UN);
            return busy;
        }, "the holder process takes the lock");

        var waiting = Blocking(() => Sys.Flock(onB, Sys.LOCK_EX));
        holder.Kill(entireProcessTree: true);
        Assert.True(waiting.Returns(Granted), "the lock of a killed process should be released when the kernel closes its files");
        Assert.Equal(0, waiting.Result);
        Sys.Close(onB);
    }

    [Fact]
    public void A_waiter_killed_while_blocked_is_answered_and_never_gets_the_lock()
    {
        var (onA, onB) = SharedFile("abandoned");
        Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_EX));
        using var waiter = Process.Start(new ProcessStartInfo("flock", ["-x", "-o", On(_cluster.B, "abandoned"), "true"]) { UseShellExecute = false })!;
        Assert.False(waiter.WaitForExit(StillBlocked), "the waiter should block while A holds the lock");

        // The kernel waits for the answer to a request already sent; the interrupted wait must end.
        waiter.Kill();
        Assert.True(waiter.WaitForExit(Granted), "a killed waiter should be answered (EINTR) and exit");
        Assert.Equal(0, Sys.Flock(onA, Sys.LOCK_UN));
        // No lock was granted to the dead waiter after A let go.
        Thread.Sleep(TimeSpan.FromSeconds(1.5));
        Assert.Equal(0, Sys.Flock(onB, Sys.LOCK_EX | Sys.LOCK_NB));
        Sys.Close(onA);
        Sys.Close(onB);
    }

    [Fact]
    public void A_byte_range_lock_that_would_close_a_cycle_of_waits_across_mounts_fails_with_EDEADLK()
    {
        // Through A this process holds byte 0 and waits for byte 1; through B, as another owner
        // (a process on another host), it holds byte 1 and asks for byte 0. Neither could ever
        // go on: the request that closes the cycle fails, as it would on one host.
        var (onA, onB) = SharedFile("deadlock");
        BlockingCall? closing = null;
        try
        {
            HoldOneByteEach(onA, onB);
            var waiting = WaitForByte(onA, 1, "byte 1 is held through B");

            var cycle = FileLock.Range(Sys.F_WRLCK, 0, 1);
            closing = Blocking(() => Sys.FcntlLock(onB, Sys.F_SETLKW, ref cycle));
            Assert.True(closing.Returns(Granted), "the request closing the cycle waits instead of failing");
            Assert.Equal(Sys.EDEADLK, closing.Result);

            CloseBAndExpectGrant(ref onB, waiting);
        }
        finally
        {
            CloseBoth(onA, onB, closing);
        }
    }

    [Fact]
    public void A_waiter_on_another_mount_whose_lock_was_just_released_closes_no_cycle()
    {
        // Through B this process (owner Y) holds byte 1 and waits for byte 0, which it holds
        // through A (owner X). X lets byte 0 go and then asks for byte 1: Y no longer waits for
        // X (byte 0 is free, Y's grant is on its way), so X must wait for Y, not fail, even
        // before Y's mount has seen the release. B is stopped meanwhile, so that it has not.
        var (onA, onB) = SharedFile("pingpong");
        BlockingCall? xWaits = null;
        try
        {
            HoldOneByteEach(onA, onB);
            var yWaits = WaitForByte(onB, 0, "byte 0 is held through A");

            Assert.Equal(0, Sys.Kill(_cluster.B.Process.Id, Sys.SIGSTOP));
            try
            {
                var unlock = FileLock.Range(Sys.F_UNLCK, 0, 1);
                Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref unlock));
                xWaits = WaitForByte(onA, 1, "A's request for byte 1 returned (EDEADLK?) while B holds it");
            }
            finally
            {
                Assert.Equal(0, Sys.Kill(_cluster.B.Process.Id, Sys.SIGCONT));
            }
            Assert.True(yWaits.Returns(Granted), "B's wait for byte 0 should end once A let it go");
            Assert.Equal(0, yWaits.Result);

            CloseBAndExpectGrant(ref onB, xWaits);
        }
        finally
        {
            CloseBoth(onA, onB, xWaits);
        }
    }

    /// <summary>A file created through A, opened read-write through A and through B.</summary>
    private (int OnA, int OnB) SharedFile(string name)
    {
        WriteFile(On(_cluster.A, name), "contents");
        return (OpenReadWrite(On(_cluster.A, name)), OpenReadWrite(On(_cluster.B, name)));
    }

    private static BlockingCall Blocking(Func<int> call) => new(call);

    /// <summary>Write locks on byte 0 through A and on byte 1 through B: two owners, as processes on two hosts would be.</summary>
    private static void HoldOneByteEach(int onA, int onB)
    {
        var zero = FileLock.Range(Sys.F_WRLCK, 0, 1);
        Assert.Equal(0, Sys.FcntlLock(onA, Sys.F_SETLK, ref zero));
        var one = FileLock.Range(Sys.F_WRLCK, 1, 1);
        Assert.Equal(0, Sys.FcntlLock(onB, Sys.F_SETLK, ref one));
    }

    /// <summary>B's close releases every lock B's owner held: <paramref name="waitingOnA"/> ends with its lock.</summary>
    private static void CloseBAndExpectGrant(ref int onB, BlockingCall waitingOnA)
    {
        Assert.Equal(0, Sys.Close(onB));
        onB = -1;
        Assert.True(waitingOnA.Returns(Granted), "the lock B held goes with its close");
        Assert.Equal(0, waitingOnA.Result);
    }

    /// <summary>Closes what is still open (-1: closed already), which ends <paramref name="pending"/> if it still waits.</summary>
    private static void CloseBoth(int onA, int onB, BlockingCall? pending)
    {
        if (onB >= 0) Sys.Close(onB);
        Sys.Close(onA);
        pending?.Returns(Granted);
    }

    /// <summary>A blocking request for a write lock on byte <paramref name="offset"/>, which must still be waiting a while later.</summary>
    private static BlockingCall WaitForByte(int fd, long offset, string stillWaiting)
    {
        var wanted = FileLock.Range(Sys.F_WRLCK, offset, 1);
        var call = Blocking(() => Sys.FcntlLock(fd, Sys.F_SETLKW, ref wanted));
        Assert.False(call.Returns(StillBlocked), stillWaiting);
        return call;
    }
}
