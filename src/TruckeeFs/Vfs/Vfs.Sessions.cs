using System.Diagnostics;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    // Registering an open takes a metadata write: only a mount's first handle of an inode does,
    // and the removal after its last close waits for a heartbeat once the file has stayed
    // closed ClosedReferenceHeartbeats heartbeats; both under the inode's stripe, so that a
    // removal and a reopen racing on one inode reach the database in the order they happened
    // here.
    private const int OpenStripes = 64;

    /// <summary>
    /// Heartbeats a closed file keeps this mount's reference: a file read or written again
    /// soon after its close (a build, a checkout, writing then reading back) opens without a
    /// metadata write, which costs as much as the rest of the open on MariaDB. The price: a file
    /// another mount unlinks meanwhile is reclaimed that much later (by this mount).
    /// </summary>
    private const int ClosedReferenceHeartbeats = 10;

    /// <summary>Closed files whose references one transaction removes at a heartbeat.</summary>
    private const int ForgetBatch = 1024;
    private readonly Lock[] _openStripes = [.. Enumerable.Range(0, OpenStripes).Select(_ => new Lock())];
    private readonly Dictionary<long, SessionOpen> _sessionOpens = [];
    private readonly Dictionary<long, (long Heartbeat, long SeenAt)> _othersSeen = [];
    private readonly CancellationTokenSource _sessionStop = new();
    private SessionInfo? _sessionInfo;
    private Task? _heartbeats;
    private long _session;

    /// <summary>This mount's session id (0 before <see cref="StartSessionAsync"/>).</summary>
    public long SessionId => Volatile.Read(ref _session);

    /// <summary>
    /// Registers this mount in the filesystem's sessions, subscribes to the other mounts'
    /// invalidations and lock releases, and starts heartbeating; every heartbeat also looks for
    /// mounts that stopped heartbeating and cleans up after them.
    /// </summary>
    public async Task StartSessionAsync(string mountpoint)
    {
        _sessionInfo = new SessionInfo(Environment.MachineName, Environment.ProcessId, mountpoint, Now(), ProcessLiveness.Current);
        Volatile.Write(ref _session, _meta.OpenSession(_sessionInfo));
        await RecordCoordinatorIdentityAsync().ConfigureAwait(false);
        await SubscribeAsync().ConfigureAwait(false);
        // A previous mount of this host that was killed is known dead at once (its process is
        // gone): clean up after it now, so opens here do not wait on markers it left.
        await CleanDeadSessionsAsync().ConfigureAwait(false);
        _heartbeats = Task.Run(HeartbeatLoopAsync);
    }

    /// <summary>Ends the session: its locks and open-file references go with it (every file is closed by now).</summary>
    private async Task EndSessionAsync()
    {
        if (_heartbeats is null) return;
        await _sessionStop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _heartbeats.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        await UnsubscribeAsync().ConfigureAwait(false);
        if (!_meta.RemoveSession(SessionId, out var released)) return;
        await _coordinator.DeleteValueAsync(CoordinatorIdentityKey(SessionId)).ConfigureAwait(false);
        // Files another mount unlinked while this one still referenced them (closed here since
        // the last heartbeat): nobody else will reclaim them now.
        foreach (var inode in released)
        {
            if (_meta.GetInode(inode) is { Nlink: 0 }) await ReclaimAsync(inode).ConfigureAwait(false);
        }
    }

    private async Task HeartbeatLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.SessionHeartbeat);
        while (await timer.WaitForNextTickAsync(_sessionStop.Token).ConfigureAwait(false))
        {
            try
            {
                var registeredAgain = !Beat();
                RetryPendingReleases();
                await ForgetClosedFilesAsync().ConfigureAwait(false);
                await CleanDeadSessionsAsync().ConfigureAwait(false);
                await RestoreCoordinatorStateAsync(registeredAgain).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever failed, the heartbeats must go on: stopping them would have the
                // other mounts declare this one dead and release the locks it holds.
                SessionLog.HeartbeatFailed(_log, e);
            }
        }
    }

    /// <summary>Records the heartbeat; false if this mount had been declared dead and registered again.</summary>
    private bool Beat()
    {
        if (_meta.Heartbeat(SessionId, Now())) return true;
        // The others declared this mount dead (it was stopped, or cut off, for longer than the
        // timeout) and released its locks and open references. Register again so that what is
        // opened from now on counts; the locks held before are lost, and files unlinked while
        // open here may have been reclaimed.
        var stale = SessionId;
        Volatile.Write(ref _session, _meta.OpenSession(_sessionInfo! with { Started = Now() }));
        List<long> open;
        lock (_sessionOpens) open = [.. _sessionOpens.Keys];
        foreach (var inode in open) _meta.AddOpen(inode, SessionId);
        ForgetHeldLocks();
        SessionLog.DeclaredDead(_log, stale, SessionId);
        return false;
    }

    /// <summary>
    /// Tells the other mounts which coordinator identity this session's per-inode states
    /// ("commit pending" markers) carry, so that a survivor can clear them if this mount dies.
    /// </summary>
    private async Task RecordCoordinatorIdentityAsync() =>
        await _coordinator.SetValueAsync(CoordinatorIdentityKey(SessionId), _coordinator.MountId).ConfigureAwait(false);

    /// <summary>
    /// Sets this session's coordinator identity and the markers of the commits still pending
    /// here again when the coordinator lost them: when this mount was declared dead
    /// (<paramref name="registeredAgain"/>: a survivor cleared them) or when Redis restarted
    /// without its data. Without them other mounts would open those files without waiting for
    /// their commits, and could not clear this mount's markers should it die.
    /// </summary>
    private async Task RestoreCoordinatorStateAsync(bool registeredAgain)
    {
        if (!registeredAgain && await _coordinator.GetValueAsync(CoordinatorIdentityKey(SessionId)).ConfigureAwait(false) == _coordinator.MountId) return;
        await RecordCoordinatorIdentityAsync().ConfigureAwait(false);
        var pending = _pendingHere.Keys.ToList();
        foreach (var inode in pending)
        {
            await _coordinator.SetStateAsync(inode, Coordination.InodeStates.Sync, on: true).ConfigureAwait(false);
            // A commit that landed meanwhile took its marker off, perhaps before the line above reached the coordinator.
            if (!_pendingHere.ContainsKey(inode)) await _coordinator.SetStateAsync(inode, Coordination.InodeStates.Sync, on: false).ConfigureAwait(false);
        }
        if (!registeredAgain) SessionLog.CoordinatorStateRestored(_log, _coordinator.Description, pending.Count);
    }

    private static string CoordinatorIdentityKey(long session) => "session-coordinator:" + session.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// A session is dead when its process is gone (seen from the same machine and pid namespace),
    /// or when its heartbeat has not changed for the session timeout as measured by this host's
    /// clock: hosts' clocks need not agree.
    /// </summary>
    private async Task CleanDeadSessionsAsync()
    {
        var now = Stopwatch.GetTimestamp();
        var sessions = _meta.Sessions();
        var dead = new List<SessionRecord>();
        lock (_othersSeen)
        {
            foreach (var session in sessions)
            {
                if (session.Id == SessionId) continue;
                if (ProcessLiveness.IsAlive(session.Liveness) == false)
                {
                    dead.Add(session);
                    continue;
                }
                if (!_othersSeen.TryGetValue(session.Id, out var seen) || seen.Heartbeat != session.Heartbeat)
                    _othersSeen[session.Id] = (session.Heartbeat, now);
                else if (Stopwatch.GetElapsedTime(seen.SeenAt, now) >= _options.SessionTimeout)
                    dead.Add(session);
            }
            foreach (var gone in _othersSeen.Keys.Where(id => sessions.All(s => s.Id != id)).ToList()) _othersSeen.Remove(gone);
        }
        foreach (var session in dead) await RemoveDeadSessionAsync(session).ConfigureAwait(false);
    }

    private async Task RemoveDeadSessionAsync(SessionRecord session)
    {
        if (!_meta.RemoveSession(session.Id, out var released)) return;
        SessionLog.RemovedDeadSession(_log, session.Id, session.Host, session.Pid, session.Mountpoint);
        // Waiters for the locks it held may go ahead.
        foreach (var inode in released) PublishLockReleased(inode);
        // Its "commit pending" markers, so that opens elsewhere stop waiting for commits that
        // will land only when that mount starts again (its journal keeps them meanwhile). Once
        // per dead session: by the survivor whose RemoveSession removed it.
        var identityKey = CoordinatorIdentityKey(session.Id);
        if (await _coordinator.GetValueAsync(identityKey).ConfigureAwait(false) is { } deadMount)
        {
            await _coordinator.ForgetMountAsync(deadMount).ConfigureAwait(false);
            await _coordinator.DeleteValueAsync(identityKey).ConfigureAwait(false);
        }
        foreach (var inode in released)
        {
            if (_meta.GetInode(inode) is { Nlink: 0 } && !IsLive(inode)) await ReclaimAsync(inode).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The session that records which files this mount has open, so that other mounts do not
    /// reclaim them; 0 when there is none to tell (no session yet, or a database no other mount can use).
    /// </summary>
    private long OpenReferenceSession => _meta.IsShared ? SessionId : 0;

    /// <summary>
    /// Whether an open of <paramref name="inode"/> must first record this mount's reference
    /// (<see cref="ISessionStore.AddOpen"/>), so that other mounts do not reclaim the file while
    /// it is open here: none is recorded yet, and there are other mounts to tell. Ask on the
    /// inode's open stripe, and count the open (<see cref="CountOpen"/>) before leaving it.
    /// </summary>
    private bool NeedsOpenReference(long inode)
    {
        if (OpenReferenceSession == 0) return false;
        lock (_sessionOpens) return !_sessionOpens.ContainsKey(inode);
    }

    /// <summary>A handle of <paramref name="inode"/> opens: records the reference if needed, and counts it. ENOENT if the inode is gone.</summary>
    private int RecordOpen(long inode)
    {
        lock (OpenStripe(inode))
        {
            if (NeedsOpenReference(inode) && _meta.AddOpen(inode, SessionId).Row is null) return Errno.ENOENT;
            CountOpen(inode);
            return 0;
        }
    }

    /// <summary>Counts a handle of <paramref name="inode"/> whose reference is recorded (by an open, or by <see cref="IMetaStore.Create"/>).</summary>
    private void CountOpen(long inode)
    {
        if (OpenReferenceSession == 0) return;
        lock (_sessionOpens) _sessionOpens[inode] = new SessionOpen(_sessionOpens.GetValueOrDefault(inode).Handles + 1, 0);
    }

    /// <summary>
    /// A handle of <paramref name="inode"/> closed. The reference of a file closed here for good
    /// leaves the metadata at a heartbeat once the file has stayed closed
    /// <see cref="ClosedReferenceHeartbeats"/> heartbeats (one write for many closes, none for a
    /// file opened again meanwhile), or at once when the file is to be reclaimed.
    /// </summary>
    private void RecordClose(long inode)
    {
        if (OpenReferenceSession == 0) return;
        lock (_sessionOpens)
        {
            _sessionOpens[inode] = new SessionOpen(_sessionOpens[inode].Handles - 1, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>Removes the references of files closed here for <see cref="ClosedReferenceHeartbeats"/> heartbeats, and reclaims those that lost their last name meanwhile.</summary>
    private async Task ForgetClosedFilesAsync()
    {
        var before = Stopwatch.GetTimestamp() - (long)(ClosedReferenceHeartbeats * _options.SessionHeartbeat.TotalSeconds * Stopwatch.Frequency);
        List<long> closed;
        lock (_sessionOpens) closed = [.. _sessionOpens.Where(e => e.Value.Handles == 0 && e.Value.ClosedAt <= before).Select(e => e.Key)];
        foreach (var some in closed.Chunk(ForgetBatch))
        {
            foreach (var inode in ForgetClosedFiles(some))
                if (!IsLive(inode)) await ReclaimAsync(inode).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Removes this mount's references to those of <paramref name="inodes"/> no handle here has
    /// open, in one transaction; returns those of them left without a name.
    /// </summary>
    private IReadOnlyList<long> ForgetClosedFiles(long[] inodes)
    {
        // Opens of these inodes wait on their stripes until the references are gone (an open
        // after that records its reference again). Taken in index order; no other path holds two.
        var stripes = inodes.Select(inode => (int)(inode % OpenStripes)).Distinct().Order().ToList();
        foreach (var stripe in stripes) _openStripes[stripe].Enter();
        try
        {
            List<long> forgotten = [];
            lock (_sessionOpens)
            {
                foreach (var inode in inodes)
                {
                    if (!_sessionOpens.TryGetValue(inode, out var open) || open.Handles != 0) continue;
                    _sessionOpens.Remove(inode);
                    forgotten.Add(inode);
                }
            }
            return _meta.RemoveOpens(forgotten, SessionId);
        }
        finally
        {
            for (var i = stripes.Count - 1; i >= 0; i--) _openStripes[stripes[i]].Exit();
        }
    }

    private bool IsLive(long inode)
    {
        lock (_liveLock) return _live.ContainsKey(inode);
    }

    /// <summary>Whether a handle of <paramref name="inode"/> is open here (or its upload queued, which holds it like one).</summary>
    private bool IsOpenHere(long inode)
    {
        lock (_liveLock) return _live.TryGetValue(inode, out var live) && live.Opens > 0;
    }

    /// <summary>The lock that orders opens of <paramref name="inode"/> against the removal of its reference.</summary>
    private Lock OpenStripe(long inode) => _openStripes[(int)(inode % OpenStripes)];

    /// <summary>
    /// An unlink deleted <paramref name="inode"/> (under its stripe): this mount's reference of
    /// it went with it, its row must not be served again, and the kernel's forget has nothing
    /// left to reclaim.
    /// </summary>
    private void ForgetReclaimed(long inode)
    {
        lock (_sessionOpens) _sessionOpens.Remove(inode);
        lock (_liveLock)
        {
            if (_live.TryGetValue(inode, out var live) && live.Opens == 0) _live.Remove(inode);
        }
        _cache.Forget(inode);
    }

    /// <summary>This mount's handles of a file whose reference it holds, and when the last one closed (a <see cref="Stopwatch"/> timestamp; Handles 0: closed, the reference not removed yet).</summary>
    private readonly record struct SessionOpen(int Handles, long ClosedAt);
}
