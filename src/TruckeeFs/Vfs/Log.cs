using Microsoft.Extensions.Logging;

namespace TruckeeFs.Vfs;

/// <summary>The engine's log messages, with stable event ids.</summary>
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Warning, "committing a file's changes failed; they stay staged and are retried")]
    public static partial void CommitFailed(ILogger logger, Exception exception);

    [LoggerMessage(1002, LogLevel.Warning, "reclaiming inode {Inode} failed")]
    public static partial void ReclaimFailed(ILogger logger, long inode, Exception exception);

    [LoggerMessage(1003, LogLevel.Information, "committed blocks of inode {Inode} staged by an earlier mount (status {Status})")]
    public static partial void RecoveredStaged(ILogger logger, long inode, int status);
}
