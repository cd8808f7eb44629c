using System.Collections.Concurrent;
using System.Globalization;
using TruckeeFs.Coordination;
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

    // Deadlocks are looked for along chains this deep at most, as Linux does.
    private const int LongestWaitChain = 10;

    private readonly Dictionary<long, TaskCompletionSource> _lockWaiters = [];

    // This mount's blocked fcntl requests and the owners they wait for, to find deadlocks. Each
    // request is announced to the other mounts through the coordinator too (WaitKey), for as
    // long as LockWaitAnnounced unless it is announced again as it retries.
    private readonly List<LockWait> _lockWaits = [];
    private static readonly TimeSpan LockWaitAnnounced = 3 * LockRetry;

    // POSIX lock owners that may hold locks through this mount, so that a close by an owner
    // that never locked (nearly every close) costs no metadata write.
    private readonly ConcurrentDictionary<(long Inode, long Owner), byte> _posixOwners = new();

    // Releases of locks the metadata database could not take (it was unreachable), as
    // (inode, owner, flock): retried at every heartbeat until it can, and first thing when the
    // same owner asks for a lock on the same file again, so that a release retried late never
    // removes a lock taken after it. Without the retry a lock would outlive its holder's close
    // for as long as this mount lives, keeping every other process out of the file.
    private readonly ConcurrentDictionary<(long Inode, long Owner, bool Flock), byte> _pendingReleases = new();

    // The owners that took POSIX locks through each handle. The kernel tells of a process's
    // close (flush names the process), but never of the last close of an open file description
    // whose own locks (F_OFD_SETLK: the owner is the description) must then go; release does,
    // and the owners that locked through that handle and through no other still open are those.
    private readonly ConcurrentDictionary<ulong, ConcurrentDictionary<long, byte>> _handleLockOwners = new();

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
    /// Unlocking first seals the file's changes made through <paramref name="handle"/> (as a close
    /// does: committed in the background, other mounts told it is pending), and locking waits for
    /// other mounts' pending commits and reloads the file's committed state, so the next holder,
    /// on any mount, reads what the previous one wrote (as NFS does). A byte-range request that
    /// would wait for an owner that waits, on this mount or another, for its own owner ends with
    /// EDEADLK.
    /// </summary>
    public async ValueTask<int> SetLockAsync(ulong handle, long inode, ulong owner, int pid, bool flock, FileLockType type, long first, long last, bool wait, Func<bool> interrupted)
    {
        if (type == FileLockType.Unlock && _handles.TryGetValue(handle, out var file))
        {
            // As a close: the version is sealed and marked pending before the lock goes, so the
            // next holder on any mount waits for its commit (below) without this unlock waiting
            // for the upload. (Runtimes unlock on every close: .NET does for its FileShare locks.)
            var sealedStatus = await CloseVersionAsync(file.Content, durable: false).ConfigureAwait(false);
            if (sealedStatus != 0) return sealedStatus;
        }
        if (!RetryPendingReleases(inode, (long)owner)) return Errno.EIO;
        var request = new FileLockRequest(inode, SessionId, (long)owner, pid, flock, type, first, last);
        LockWait? waiting = null;
        try
        {
            while (true)
            {
                var released = ExpectRelease(inode);
                var status = _meta.SetLock(request with { Session = SessionId }, out var conflict);
                // A wait still listed or announced while the grant is being finished closes no
                // cycle: searches take a waiter's blocker from the locks held now.
                if (status == 0) return await LockedAsync(handle, request).ConfigureAwait(false);
                if (status != Errno.EAGAIN || !wait) return status;
                // Byte-range requests only, as Linux looks for deadlocks among fcntl locks alone.
                if (!flock && !await WaitForAsync(waiting ??= new LockWait(request), conflict!).ConfigureAwait(false)) return Errno.EDEADLK;
                var retryAt = DateTime.UtcNow + LockRetry;
                while (!released.IsCompleted && DateTime.UtcNow < retryAt)
                {
                    if (interrupted()) return Errno.EINTR;
                    await Task.WhenAny(released, Task.Delay(InterruptPoll)).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            if (waiting is not null) await EndWaitAsync(waiting).ConfigureAwait(false);
        }
    }

    /// <summary>A lock request was granted (or an unlock done).</summary>
    private async ValueTask<int> LockedAsync(ulong handle, FileLockRequest request)
    {
        AfterSetLock(handle, request);
        // The previous holder, perhaps on another mount, committed before unlocking:
        // read what it wrote, not what this mount loaded before (as NFS revalidates on lock).
        if (request.Type != FileLockType.Unlock && _handles.TryGetValue(handle, out var locked))
        {
            await WaitForOtherMountsAsync(request.Inode).ConfigureAwait(false);
            if (_meta.GetInode(request.Inode) is { } current && await locked.Content.RefreshAsync(current).ConfigureAwait(false) && _kernel is { } kernel)
            {
                // The kernel's pages are of the version before; the other mount's announcement
                // of the commit may not have arrived yet. Off the FUSE worker, as every notification.
                await Task.Run(() => kernel.InvalidateInode(request.Inode, data: true)).ConfigureAwait(false);
            }
        }
        return 0;
    }

    /// <summary>
    /// Records that <paramref name="waiting"/> waits for the holder of <paramref name="conflict"/>,
    /// here and for the other mounts, unless that holder waits, however indirectly, for the
    /// waiting owner: then neither would ever go on, and the request is refused (false). The
    /// chain is followed through this mount's waits, atomically, and through the requests other
    /// mounts announced as blocked, each waiting for whoever holds a lock in its way now (read
    /// from the metadata database, so that a holder who let go since is not taken for one who
    /// still blocks it). Across mounts the search is not atomic: two requests closing one cycle
    /// at once on two mounts each announce their wait before they search, so at least the later
    /// search finds the cycle (both may, and both fail).
    /// </summary>
    private async ValueTask<bool> WaitForAsync(LockWait waiting, FileLockRecord conflict)
    {
        var me = new LockOwner(SessionId, waiting.Owner);
        LockOwner? holder = new LockOwner(conflict.Session, conflict.Owner);
        FileLockRequest? blocked = null;
        var depth = 0;
        lock (_lockWaits)
        {
            for (; depth < LongestWaitChain && blocked is null && holder is { } local && local.Session == SessionId; depth++)
            {
                if (local == me) return false;
                (holder, blocked) = LocalWaitOf(local.Owner);
            }
            waiting.Holder = new LockOwner(conflict.Session, conflict.Owner);
            if (!_lockWaits.Contains(waiting)) _lockWaits.Add(waiting);
        }
        await AnnounceWaitAsync(waiting).ConfigureAwait(false);
        for (; depth < LongestWaitChain; depth++)
        {
            if (blocked is not null) holder = BlockerOf(blocked);
            if (holder is not { } next) return true;
            if (next == me) return false;
            if (next.Session != SessionId)
            {
                (holder, blocked) = (null, await AnnouncedRequestAsync(next).ConfigureAwait(false));
                if (blocked is null) return true;
                continue;
            }
            lock (_lockWaits) (holder, blocked) = LocalWaitOf(next.Owner);
        }
        return true;
    }

    /// <summary>
    /// Whom this mount's owner <paramref name="owner"/> waits for, if it waits. A holder on this
    /// mount is known here (its let-go clears the wait's holder at once); for a holder on
    /// another mount, which may have let go since, the blocked request is returned instead, to
    /// find its current blocker in the metadata (<see cref="BlockerOf"/>). Called under the lock.
    /// </summary>
    private (LockOwner? Holder, FileLockRequest? Blocked) LocalWaitOf(long owner)
    {
        var wait = _lockWaits.Find(w => w.Owner == owner && w.Holder is not null);
        if (wait is null) return (null, null);
        return wait.Holder!.Value.Session == SessionId ? (wait.Holder, null) : (null, wait.Request);
    }

    /// <summary>The owner of a lock in the way of <paramref name="blocked"/> now, if any (null too when the metadata database cannot tell).</summary>
    private LockOwner? BlockerOf(FileLockRequest blocked)
    {
        try
        {
            return _meta.TestLock(blocked) is { } blocker ? new LockOwner(blocker.Session, blocker.Owner) : null;
        }
        catch (MetaStoreException)
        {
            return null;
        }
    }

    /// <summary>
    /// Tells the other mounts which request of which owner is blocked. A coordinator that fails
    /// leaves deadlocks across mounts unseen, as before there was one; the wait goes on.
    /// </summary>
    private async ValueTask AnnounceWaitAsync(LockWait waiting)
    {
        var request = waiting.Request;
        try
        {
            await _coordinator.SetValueAsync(WaitKey(new LockOwner(SessionId, waiting.Owner)),
                string.Create(CultureInfo.InvariantCulture, $"{request.Inode}:{(int)request.Type}:{request.First}:{request.Last}"), LockWaitAnnounced).ConfigureAwait(false);
            waiting.Announced = true;
        }
        catch (CoordinatorException e)
        {
            Log.LockWaitUnannounced(_log, e);
        }
    }

    /// <summary>The request an owner on another mount announced as blocked, if it did.</summary>
    private async ValueTask<FileLockRequest?> AnnouncedRequestAsync(LockOwner owner)
    {
        string? announced;
        try
        {
            announced = await _coordinator.GetValueAsync(WaitKey(owner)).ConfigureAwait(false);
        }
        catch (CoordinatorException e)
        {
            Log.LockWaitUnannounced(_log, e);
            return null;
        }
        return announced?.Split(':') is [var inode, var type, var first, var last]
            && long.TryParse(inode, NumberStyles.Integer, CultureInfo.InvariantCulture, out var inodeId)
            && int.TryParse(type, NumberStyles.Integer, CultureInfo.InvariantCulture, out var typeCode)
            && long.TryParse(first, NumberStyles.Integer, CultureInfo.InvariantCulture, out var firstByte)
            && long.TryParse(last, NumberStyles.Integer, CultureInfo.InvariantCulture, out var lastByte)
            ? new FileLockRequest(inodeId, owner.Session, owner.Owner, 0, false, (FileLockType)typeCode, firstByte, lastByte)
            : null;
    }

    /// <summary>The request of <paramref name="waiting"/> was granted or has ended: it waits for nobody, here or as announced.</summary>
    private async ValueTask EndWaitAsync(LockWait waiting)
    {
        lock (_lockWaits) _lockWaits.Remove(waiting);
        if (!waiting.Announced) return;
        waiting.Announced = false;
        try
        {
            await _coordinator.DeleteValueAsync(WaitKey(new LockOwner(SessionId, waiting.Owner))).ConfigureAwait(false);
        }
        catch (CoordinatorException e)
        {
            // It expires on its own (LockWaitAnnounced).
            Log.LockWaitUnannounced(_log, e);
        }
    }

    private static string WaitKey(LockOwner owner) => "lock-wait:" + owner;

    /// <summary>
    /// <paramref name="owner"/> let go of locks on <paramref name="inode"/>: those waiting for it
    /// there wait for nobody known until they try again, so no deadlock is seen in a wait that is ending.
    /// </summary>
    private void StopWaitingFor(long inode, long owner)
    {
        lock (_lockWaits)
        {
            foreach (var wait in _lockWaits)
            {
                if (wait.Inode == inode && wait.Holder == new LockOwner(SessionId, owner)) wait.Holder = null;
            }
        }
    }

    /// <summary>A close by <paramref name="owner"/>: POSIX says every fcntl lock it holds on the file goes.</summary>
    public void ReleasePosixLocks(long inode, ulong owner)
    {
        if (_posixOwners.TryRemove((inode, (long)owner), out _)) ReleaseLocks(inode, (long)owner, flock: false);
    }

    /// <summary>The last close of an open file description that took flock locks (<paramref name="owner"/> names it).</summary>
    public void ReleaseFlocks(long inode, ulong owner) => ReleaseLocks(inode, (long)owner, flock: true);

    /// <summary>
    /// Releases an owner's locks of one kind on a file, now or, if the metadata database cannot
    /// be reached, as soon as it can (<see cref="_pendingReleases"/>): the close that releases
    /// them has happened either way.
    /// </summary>
    private void ReleaseLocks(long inode, long owner, bool flock)
    {
        try
        {
            if (_meta.ReleaseLocks(inode, SessionId, owner, flock) == 0) return;
        }
        catch (MetaStoreException e)
        {
            _pendingReleases[(inode, owner, flock)] = 0;
            Log.LockReleaseDeferred(_log, inode, e);
            return;
        }
        if (flock) PublishLockReleased(inode);
        else LocksReleased(inode, owner);
    }

    /// <summary>
    /// Retries the releases still pending, those of <paramref name="owner"/> on
    /// <paramref name="inode"/> only when both are given; false if one of them failed again.
    /// One retry at a time: a lock request that finds none pending must not overtake a release
    /// the heartbeat is retrying.
    /// </summary>
    private bool RetryPendingReleases(long? inode = null, long? owner = null)
    {
        lock (_pendingReleases)
        {
            if (_pendingReleases.IsEmpty) return true;
            foreach (var pending in _pendingReleases.Keys)
            {
                if (inode is not null && (pending.Inode, pending.Owner) != (inode, owner)) continue;
                _pendingReleases.TryRemove(pending, out _);
                ReleaseLocks(pending.Inode, pending.Owner, pending.Flock);
                if (_pendingReleases.ContainsKey(pending)) return false;
            }
            return true;
        }
    }

    /// <summary>
    /// The last close of an open file description: the POSIX locks of owners that locked only
    /// through it go (its own open-file-description locks; a process's locks went at its close).
    /// </summary>
    public void ReleaseHandleLocks(long inode, ulong handle)
    {
        if (!_handleLockOwners.TryRemove(handle, out var owners)) return;
        foreach (var owner in owners.Keys)
        {
            if (_handleLockOwners.Values.Any(other => other.ContainsKey(owner))) continue;
            // A process's close (flush) has released its own locks already.
            if (_posixOwners.TryRemove((inode, owner), out _)) ReleaseLocks(inode, owner, flock: false);
        }
    }

    private void AfterSetLock(ulong handle, FileLockRequest request)
    {
        if (!request.Flock && request.Type != FileLockType.Unlock)
        {
            _posixOwners[(request.Inode, request.Owner)] = 0;
            _handleLockOwners.GetOrAdd(handle, _ => new ConcurrentDictionary<long, byte>())[request.Owner] = 0;
        }
        // An unlock, or a downgrade to shared, may let someone in.
        if (request.Type != FileLockType.Write) LocksReleased(request.Inode, request.Owner);
    }

    private void LocksReleased(long inode, long owner)
    {
        StopWaitingFor(inode, owner);
        PublishLockReleased(inode);
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
    private void ForgetHeldLocks()
    {
        _posixOwners.Clear();
        _handleLockOwners.Clear();
        _pendingReleases.Clear();
    }

    /// <summary>A blocked byte-range request, and the owner it waits for (null: none known).</summary>
    private sealed class LockWait(FileLockRequest request)
    {
        public FileLockRequest Request { get; } = request;
        public long Owner => Request.Owner;
        public long Inode => Request.Inode;
        public LockOwner? Holder { get; set; }

        /// <summary>Whether the other mounts were told of the wait (and must be told it ended).</summary>
        public bool Announced { get; set; }
    }

    /// <summary>A lock owner on any mount: the mount's session, and the owner the kernel named there.</summary>
    private readonly record struct LockOwner(long Session, long Owner)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Session}:{Owner}");
    }
}
