using Microsoft.Extensions.Logging;

namespace TruckeeFs.Cache;

/// <summary>The block cache's and pruner's log messages, with stable event ids (51xx).</summary>
internal static partial class CacheLog
{
    [LoggerMessage(5101, LogLevel.Information, "cache pruner evicted {Count} blocks ({Bytes} bytes); {Cached} bytes stay cached")]
    public static partial void Pruned(ILogger logger, int count, long bytes, long cached);

    [LoggerMessage(5102, LogLevel.Warning, "cache pruner could not scan or clean {Directory}; retrying next cycle")]
    public static partial void PruneFailed(ILogger logger, string directory, Exception exception);

    [LoggerMessage(5103, LogLevel.Warning, "cache pruner could not lower its priority to nice {Nice} (errno {Errno}); it runs at normal priority")]
    public static partial void NiceFailed(ILogger logger, int nice, int errno);
}
