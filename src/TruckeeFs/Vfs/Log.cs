using Microsoft.Extensions.Logging;

namespace TruckeeFs.Vfs;

/// <summary>The engine's log messages, with stable event ids.</summary>
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Warning, "committing a file's changes failed; they stay staged and are retried")]
    public static partial void CommitFailed(ILogger logger, Exception exception);

    [LoggerMessage(1002, LogLevel.Warning, "reclaiming inode {Inode} failed")]
    public static partial void ReclaimFailed(ILogger logger, long inode, Exception exception);

    [LoggerMessage(1021, LogLevel.Warning, "deleting objects no file references any more failed; truckeefs gc finds them")]
    public static partial void CollectFailed(ILogger logger, Exception exception);

    [LoggerMessage(1022, LogLevel.Warning, "inode {Inode}: releasing a closed file's locks failed; retrying at every heartbeat until the metadata database answers")]
    public static partial void LockReleaseDeferred(ILogger logger, long inode, Exception exception);

    [LoggerMessage(1023, LogLevel.Warning, "a lock wait could not be told to, or read from, the other mounts: deadlocks between mounts go unseen until the coordinator answers")]
    public static partial void LockWaitUnannounced(ILogger logger, Exception exception);

    [LoggerMessage(1003, LogLevel.Information, "inode {Inode}: an earlier mount closed a version of {Size} bytes and did not commit it; committing it now")]
    public static partial void RecoveredStaged(ILogger logger, long inode, long size);

    [LoggerMessage(1010, LogLevel.Warning, "uploading inode {Inode} failed; its data stays staged and is retried in {Seconds} s")]
    public static partial void UploadFailed(ILogger logger, long inode, double seconds, Exception exception);

    [LoggerMessage(1011, LogLevel.Warning, "inode {Inode}: sealing the closed version on local disk failed")]
    public static partial void SealFailed(ILogger logger, long inode, Exception exception);

    [LoggerMessage(1012, LogLevel.Warning, "inode {Inode}: the coordinator could not be told of a pending commit; committing before the close returns")]
    public static partial void MarkFailed(ILogger logger, long inode);

    [LoggerMessage(1013, LogLevel.Warning, "inode {Inode}: clearing the pending-commit marker failed; other mounts' opens wait until it times out")]
    public static partial void UnmarkFailed(ILogger logger, long inode, Exception exception);

    [LoggerMessage(1014, LogLevel.Warning, "inode {Inode}: checking for other mounts' pending commits failed; opening with the committed contents")]
    public static partial void PendingCheckFailed(ILogger logger, long inode, Exception exception);

    [LoggerMessage(1015, LogLevel.Warning, "inode {Inode}: another mount's commit is still pending after {Seconds} s (commit_wait_timeout); opening with the last committed contents")]
    public static partial void CommitWaitTimedOut(ILogger logger, long inode, double seconds);

    [LoggerMessage(1016, LogLevel.Information, "inode {Inode}: a closed version was not committed (status {Status}: the file is gone)")]
    public static partial void CommitDropped(ILogger logger, long inode, int status);

    [LoggerMessage(1017, LogLevel.Error, "commit journal entry {Path} is damaged; it and its inode's staged blocks are kept for inspection")]
    public static partial void DamagedJournal(ILogger logger, string path, Exception exception);

    [LoggerMessage(1018, LogLevel.Warning, "inode {Inode}: an earlier mount was killed with {Count} blocks written and not closed; they are kept over the last closed version")]
    public static partial void RecoveredUnclosed(ILogger logger, long inode, int count);

    [LoggerMessage(1019, LogLevel.Error, "{Count} files could not be uploaded before the unmount; they stay staged and journaled, and the next mount commits them")]
    public static partial void LeftStaged(ILogger logger, int count);

    [LoggerMessage(1020, LogLevel.Information, "inode {Inode}: the open waited {Milliseconds} ms for another mount's pending commit")]
    public static partial void WaitedForCommit(ILogger logger, long inode, double milliseconds);
}
