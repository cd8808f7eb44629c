using Microsoft.Extensions.Logging;

namespace TruckeeFs.Vfs;

/// <summary>Log messages of sessions, invalidations and locks (several mounts at once), with stable event ids.</summary>
internal static partial class SessionLog
{
    [LoggerMessage(1101, LogLevel.Warning, "session heartbeat or dead-session check failed; retrying at the next heartbeat")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception);

    [LoggerMessage(1102, LogLevel.Error, "the other mounts declared this mount (session {Stale}) dead and released its locks; registered again as session {Session}")]
    public static partial void DeclaredDead(ILogger logger, long stale, long session);

    [LoggerMessage(1103, LogLevel.Warning, "session {Session} ({Host} pid {Pid}, {Mountpoint}) stopped heartbeating: released its locks and open files")]
    public static partial void RemovedDeadSession(ILogger logger, long session, string host, long pid, string mountpoint);

    [LoggerMessage(1104, LogLevel.Warning, "publishing on {Channel} failed; other mounts see the change when their caches time out")]
    public static partial void PublishFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(1105, LogLevel.Warning, "{Coordinator} had forgotten this mount (restarted without its data?): set its identity and {Count} commit-pending markers again")]
    public static partial void CoordinatorStateRestored(ILogger logger, string coordinator, int count);
}
