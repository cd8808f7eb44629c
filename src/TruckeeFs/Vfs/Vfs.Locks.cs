using System.Collections.Concurrent;
using System.Globalization;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

/// <summary>The lock that stands in the way of a request (F_GETLK); <see cref="Pid"/> is 0 when its holder runs on another mount.</summary>
public readonly record struct LockHolder(FileLockType Type, long First, long Last, int Pid);

public sealed partial class Vfs
{
    // Releases are announced on this channel (to every mount, this one included) so that
    // blocked requests retry at once; they also retry on their own now and then, in case an
    // announcement is lost or a dead mount's locks were cleaned without one.
    private const string LockChannel = "locks";
    private static readonly TimeSpan LockRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan InterruptPoll = TimeSpan.FromMilliseconds(100);

    private readonly Dictionary<long, TaskCompletionSource> _lockWaiters = [];

    // POSIX lock owners that may hold locks through this mount, so that a close by an owner
    // that never locked (nearly every close) costs no metadata write.
    private readonly ConcurrentDictionary<(long Inode, long Owner), byte> _posixOwners = new();

    /// <summary>F_GETLK: the first lock of another owner that conflicts with the described one, or null.</summary>
    public LockHolder? TestLock(long inode, ulong owner, FileLockType type, long first, long last)
    {
        var conflict = _meta.TestLock(new FileLockRequest(inode, SessionId, (long)owner, 0, false, type, first, last));
        return conflict is null ? null : new LockHolder(conflict.Type, conflict.First, conflict.Last, conflict.Session == SessionId ? (int)conflict.Pid : 0);
    }

    /// <summary>
    /// F_SETLK/F_SETLKW (<paramref name="flock"/> false, bytes <paramref name="first"/> to
    /// <paramref name="last"/>) and flock(2) (<paramref name="flock"/> true, whole file): 0, or
    /// EAGAIN when another owner's lock conflicts and <paramref name="wait"/> is false. Waiting
    /// ends when the lock is granted or <paramref name="interrupted"/> turns true (EINTR).
    /// Unlocking first commits the file's changes made through <paramref name="handle"/>, so the
    /// next holder, on any mount, reads them (as NFS does).
    /// </summary>
    public async ValueTask<int> SetLockAsync(ulong handle, long inode, ulong owner, int pid, bool flock, FileLockType type, long first, long last, bool wait, Func<bool> interrupted)
    {
        if (type == FileLockType.Unlock && _handles.TryGetValue(handle, out var file))
        {
            var committed = await CommitAsync(file.Content, durable: false).ConfigureAwait(false);
            if (committed != 0) return committed;
        }
        var request = new FileLockRequest(inode, SessionId, (long)owner, pid, flock, type, first, last);
        while (true)
        {
            var released = ExpectRelease(inode);
            var status = _meta.SetLock(request with { Session = SessionId }, out _);
            if (status != Errno.EAGAIN || !wait)
            {
                if (status == 0) AfterSetLock(request);
                return status;
            }
            var retryAt = DateTime.UtcNow + LockRetry;
            while (!released.IsCompleted && DateTime.UtcNow < retryAt)
            {
                if (interrupted()) return Errno.EINTR;
                await Task.WhenAny(released, Task.Delay(InterruptPoll)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A close by <paramref name="owner"/>: POSIX says every fcntl lock it holds on the file goes.</summary>
    public void ReleasePosixLocks(long inode, ulong owner)
    {
        if (_posixOwners.TryRemove((inode, (long)owner), out _) && _meta.ReleaseLocks(inode, SessionId, (long)owner, flock: false) > 0)
            PublishLockReleased(inode);
    }

    /// <summary>The last close of an open file description that took flock locks (<paramref name="owner"/> names it).</summary>
    public void ReleaseFlocks(long inode, ulong owner)
    {
        if (_meta.ReleaseLocks(inode, SessionId, (long)owner, flock: true) > 0) PublishLockReleased(inode);
    }

    private void AfterSetLock(FileLockRequest request)
    {
        if (!request.Flock && request.Type != FileLockType.Unlock) _posixOwners[(request.Inode, request.Owner)] = 0;
        // An unlock, or a downgrade to shared, may let someone in.
        if (request.Type != FileLockType.Write) PublishLockReleased(request.Inode);
    }

    /// <summary>A task that completes at the next release announced for <paramref name="inode"/>.</summary>
    private Task ExpectRelease(long inode)
    {
        lock (_lockWaiters)
        {
            if (!_lockWaiters.TryGetValue(inode, out var waiter) || waiter.Task.IsCompleted)
                _lockWaiters[inode] = waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return waiter.Task;
        }
    }

    private void PublishLockReleased(long inode) => _ = PublishAsync(LockChannel, inode.ToString(CultureInfo.InvariantCulture));

    private void OnLockReleased(string message)
    {
        if (!long.TryParse(message, NumberStyles.Integer, CultureInfo.InvariantCulture, out var inode)) return;
        TaskCompletionSource? waiter;
        lock (_lockWaiters) _lockWaiters.Remove(inode, out waiter);
        waiter?.TrySetResult();
    }

    /// <summary>This mount was declared dead: the locks it held were released by the others.</summary>
    private void ForgetHeldLocks() => _posixOwners.Clear();
}
