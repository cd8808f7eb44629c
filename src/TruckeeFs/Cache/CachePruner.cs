using Microsoft.Extensions.Logging;

namespace TruckeeFs.Cache;

/// <summary>
/// Keeps the block cache bounded, in the background: every <see cref="CacheOptions.Interval"/>
/// (and early when a download takes the cache over its budget or the disk under its minimum of
/// free space) it evicts blocks not read for <see cref="CacheOptions.Ttl"/>, then the least
/// recently read ones until the cache fits <see cref="CacheOptions.SizeBudget"/> and the disk
/// has <see cref="CacheOptions.MinFree"/> bytes free. Blocks pinned by open files (those each
/// reads lately or fetched ahead, see <see cref="FileContent"/>) are never evicted; staged changes live outside the cache's block folder and are never even looked at.
///
/// The last read of a block is its file's modification time (<see cref="BlockCache"/> sets it on
/// every open), which survives a remount, unlike an in-memory list, and works on filesystems
/// mounted noatime. The pruner runs on its own thread with the niceness <see cref="CacheOptions.Nice"/>,
/// so that its directory scans and deletions yield to the mount's own work.
/// </summary>
public sealed class CachePruner : IDisposable
{
    private readonly BlockCache _cache;
    private readonly CacheOptions _options;
    private readonly ILogger _log;
    private readonly AutoResetEvent _wake = new(false);
    private readonly ManualResetEvent _stop = new(false);
    private Thread? _thread;

    /// <summary>A pruner that runs only when <see cref="Prune"/> is called; <see cref="Start"/> runs one in the background.</summary>
    internal CachePruner(BlockCache cache, CacheOptions options, ILogger log)
    {
        _cache = cache;
        _options = options;
        _log = log;
    }

    /// <summary>Starts pruning <paramref name="cache"/>; null when <see cref="CacheOptions.Maintenance"/> is off.</summary>
    public static CachePruner? Start(BlockCache cache, CacheOptions options, ILogger log)
    {
        if (!options.Maintenance) return null;
        var pruner = new CachePruner(cache, options, log);
        cache.BlockAdded += pruner.OnBlockAdded;
        pruner._thread = new Thread(pruner.Loop) { IsBackground = true, Name = "truckeefs cache pruner" };
        pruner._thread.Start();
        return pruner;
    }

    /// <summary>One pruning cycle, on the caller's thread.</summary>
    public PruneResult Prune()
    {
        var now = DateTime.UtcNow;
        var blocks = new List<FileInfo>();
        long total = 0;
        foreach (var file in new DirectoryInfo(_cache.BlocksDirectory).EnumerateFiles())
        {
            if (!BlockCache.IsBlockName(file.Name)) continue;
            blocks.Add(file);
            total += file.Length;
        }
        blocks.Sort((a, b) => a.LastWriteTimeUtc.CompareTo(b.LastWriteTimeUtc));
        var free = FreeBytes();
        int evicted = 0;
        long evictedBytes = 0;
        foreach (var block in blocks)
        {
            var expired = _options.Ttl > TimeSpan.Zero && now - block.LastWriteTimeUtc > _options.Ttl;
            var overBudget = _options.SizeBudget > 0 && total > _options.SizeBudget;
            var diskLow = _options.MinFree > 0 && free < _options.MinFree;
            // Oldest first: once a block is neither expired nor needed for space, no later one is.
            if (!expired && !overBudget && !diskLow) break;
            if (!_cache.Evict(block.Name)) continue;
            total -= block.Length;
            free += block.Length;
            evicted++;
            evictedBytes += block.Length;
        }
        _cache.SetCachedBytes(total);
        return new PruneResult(evicted, evictedBytes, total);
    }

    /// <summary>Stops the pruner thread (a cycle under way finishes first).</summary>
    public void Dispose()
    {
        _cache.BlockAdded -= OnBlockAdded;
        _stop.Set();
        _thread?.Join();
        _wake.Dispose();
        _stop.Dispose();
    }

    private void Loop()
    {
        if (Posix.SetThreadNice(_options.Nice) is var error and not 0) CacheLog.NiceFailed(_log, _options.Nice, error);
        WaitHandle[] handles = [_stop, _wake];
        do
        {
            try
            {
                var result = Prune();
                if (result.Evicted > 0) CacheLog.Pruned(_log, result.Evicted, result.EvictedBytes, result.CachedBytes);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                CacheLog.PruneFailed(_log, _cache.BlocksDirectory, e);
            }
        }
        while (WaitHandle.WaitAny(handles, _options.Interval) != 0);
    }

    private void OnBlockAdded()
    {
        if (_options.SizeBudget > 0 && _cache.CachedBytes > _options.SizeBudget || _options.MinFree > 0 && FreeBytes() < _options.MinFree)
            _wake.Set();
    }

    private long FreeBytes()
    {
        var disk = Posix.StatVfs(_cache.BlocksDirectory);
        return disk.BlocksAvailable * disk.FragmentSize;
    }
}

/// <summary>What one pruning cycle did: blocks and bytes evicted, and the bytes left cached.</summary>
public readonly record struct PruneResult(int Evicted, long EvictedBytes, long CachedBytes);
