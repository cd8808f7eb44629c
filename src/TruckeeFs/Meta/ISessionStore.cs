namespace TruckeeFs.Meta;

/// <summary>
/// What the mounts of one filesystem share about each other: who is mounted (sessions and
/// their heartbeats), which inodes each has open, and the file locks each holds. It lives with
/// the metadata because it must change in the same transactions: an inode is deleted only when
/// no session has it open, and a lock is granted only against the locks other sessions hold.
///
/// Atomicity and errors as <see cref="IMetaStore"/>: each method is one transaction.
/// </summary>
public interface ISessionStore
{
    /// <summary>
    /// Whether other mounts can use the store while this one does. False when one mount holds the
    /// database exclusively (the embedded SQLite file): then no other mount can reclaim a file
    /// this one has open, and open references need not be recorded.
    /// </summary>
    bool IsShared { get; }

    /// <summary>Registers a mount; returns its session id (never reused).</summary>
    long OpenSession(SessionInfo session);

    /// <summary>Records that the session is alive; false when its row is gone (the others declared it dead).</summary>
    bool Heartbeat(long session, long now);

    /// <summary>Every registered session.</summary>
    IReadOnlyList<SessionRecord> Sessions();

    /// <summary>
    /// Removes a session with its locks and open-file references (a clean unmount, or a dead
    /// mount cleaned by a survivor). Returns false if it was already gone; <paramref name="released"/>
    /// holds the inodes it had open or locked: some may now be reclaimable, and waiters for
    /// their locks may go ahead.
    /// </summary>
    bool RemoveSession(long session, out IReadOnlyList<long> released);

    /// <summary>
    /// Records that <paramref name="session"/> has <paramref name="inode"/> open, if it is a
    /// regular file, and returns its row (null if the inode is gone: nothing recorded) and block
    /// map, read in the same transaction (an open needs them next). See also <see cref="IMetaStore.Create"/>.
    /// </summary>
    (Inode? Row, IReadOnlyList<BlockRef> Blocks) AddOpen(long inode, long session);

    /// <summary>
    /// The session closed its last handle of each of <paramref name="inodes"/>: their references
    /// go in one transaction. Returns those of them left without a name (they may now be reclaimable).
    /// </summary>
    IReadOnlyList<long> RemoveOpens(IReadOnlyCollection<long> inodes, long session);

    /// <summary>
    /// Takes, changes or releases a lock (<see cref="FileLockRequest.Type"/> Unlock) of
    /// <see cref="FileLockRequest.Owner"/>: 0, or EAGAIN with the first lock of another owner that
    /// conflicts in <paramref name="conflict"/>. POSIX locks of one owner are split and merged
    /// as fcntl(2) describes; a flock owner holds one lock per file, which a new request replaces.
    /// </summary>
    int SetLock(FileLockRequest request, out FileLockRecord? conflict);

    /// <summary>The first lock of another owner that would conflict with <paramref name="request"/> (F_GETLK), or null.</summary>
    FileLockRecord? TestLock(FileLockRequest request);

    /// <summary>Releases every lock of one kind an owner holds on an inode (close, last close); returns how many.</summary>
    int ReleaseLocks(long inode, long session, long owner, bool flock);
}

/// <summary>
/// A mount as it registers itself. <see cref="Liveness"/> lets a mount on the same machine and
/// pid namespace tell at once whether the process still runs (see <c>ProcessLiveness</c>).
/// </summary>
public sealed record SessionInfo(string Host, long Pid, string Mountpoint, long Started, string Liveness);

/// <summary>A registered mount.</summary>
public sealed record SessionRecord(long Id, string Host, long Pid, string Mountpoint, long Started, long Heartbeat, string Liveness);

public enum FileLockType
{
    Read = 0,
    Write = 1,
    Unlock = 2,
}

/// <summary>
/// A lock request: owner is the kernel's lock owner (a process for POSIX locks, an open file
/// description for flock), unique within its session. Bytes <see cref="First"/> to
/// <see cref="Last"/> inclusive; <see cref="long.MaxValue"/> as Last means "to the end, however
/// far". flock requests cover the whole file.
/// </summary>
public sealed record FileLockRequest(long Inode, long Session, long Owner, long Pid, bool Flock, FileLockType Type, long First, long Last);

/// <summary>A held lock.</summary>
public sealed record FileLockRecord(long Session, long Owner, long Pid, bool Flock, FileLockType Type, long First, long Last);
