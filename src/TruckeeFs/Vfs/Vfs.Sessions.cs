using System.Diagnostics;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    // Registering an open takes a metadata write: only a mount's first handle of an inode and
    // its last close do, each under the inode's stripe so that a close and a reopen racing on
    // one inode reach the database in the order they happened here.
    private const int OpenStripes = 64;
    private readonly Lock[] _openStripes = [.. Enumerable.Range(0, OpenStripes).Select(_ => new Lock())];
    private readonly Dictionary<long, int> _sessionOpens = [];
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
        await SubscribeAsync().ConfigureAwait(false);
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
        _meta.RemoveSession(SessionId, out _);
    }

    private async Task HeartbeatLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.SessionHeartbeat);
        while (await timer.WaitForNextTickAsync(_sessionStop.Token).ConfigureAwait(false))
        {
            try
            {
                Beat();
                await CleanDeadSessionsAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is MetaStoreException or Coordination.CoordinatorException)
            {
                SessionLog.HeartbeatFailed(_log, e);
            }
        }
    }

    private void Beat()
    {
        if (_meta.Heartbeat(SessionId, Now())) return;
        // The others declared this mount dead (it was stopped, or cut off, for longer than the
        // timeout) and released its locks and open references. Register again so that what is
        // opened from now on counts; the locks held before are lost, and files unlinked while
        // open here may have been reclaimed.
        var stale = SessionId;
        Volatile.Write(ref _session, _meta.OpenSession(_sessionInfo! with { Started = Now() }));
        lock (_sessionOpens)
        {
            foreach (var inode in _sessionOpens.Keys) _meta.AddOpen(inode, SessionId);
        }
        ForgetHeldLocks();
        SessionLog.DeclaredDead(_log, stale, SessionId);
    }

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
        // Coordinator state a dead session leaves behind (per-inode markers it set) is cleaned
        // here, once per dead session, by the survivor whose RemoveSession removed it.
        foreach (var inode in released)
        {
            if (_meta.GetInode(inode) is { Nlink: 0 } && !IsLive(inode)) await ReclaimAsync(inode).ConfigureAwait(false);
        }
    }

    /// <summary>The first handle of <paramref name="inode"/> this mount opens: other mounts must not reclaim it while it is open here.</summary>
    private int RecordOpen(long inode)
    {
        if (SessionId == 0) return 0;
        lock (_openStripes[(int)(inode % OpenStripes)])
        {
            int count;
            lock (_sessionOpens) count = _sessionOpens.GetValueOrDefault(inode);
            if (count == 0)
            {
                var status = _meta.AddOpen(inode, SessionId);
                if (status != 0) return status;
            }
            lock (_sessionOpens) _sessionOpens[inode] = count + 1;
            return 0;
        }
    }

    /// <summary>A handle of <paramref name="inode"/> closed; the last one ends this mount's open reference.</summary>
    private void RecordClose(long inode)
    {
        if (SessionId == 0) return;
        lock (_openStripes[(int)(inode % OpenStripes)])
        {
            int count;
            lock (_sessionOpens)
            {
                count = _sessionOpens.GetValueOrDefault(inode) - 1;
                if (count > 0) _sessionOpens[inode] = count;
                else _sessionOpens.Remove(inode);
            }
            if (count == 0) _meta.RemoveOpen(inode, SessionId);
        }
    }

    private bool IsLive(long inode)
    {
        lock (_liveLock) return _live.ContainsKey(inode);
    }
}
