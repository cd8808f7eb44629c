namespace TruckeeFs.Cache;

/// <summary>How the block cache fetches and how the <see cref="CachePruner"/> keeps it bounded.</summary>
public sealed record CacheOptions
{
    /// <summary>Whether the pruner runs at all (cache_maintenance).</summary>
    public bool Maintenance { get; init; } = true;

    /// <summary>Blocks not read for this long are evicted (cache_ttl); zero or less: never by age.</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromHours(4);

    /// <summary>Budget of cached block bytes (cache_size); 0: unlimited.</summary>
    public long SizeBudget { get; init; }

    /// <summary>Free bytes the pruner keeps on the cache's filesystem (cache_min_free); 0: no minimum.</summary>
    public long MinFree { get; init; } = 1L << 30;

    /// <summary>Time between pruner cycles (sleep); a download that takes the cache over budget starts one early.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Niceness of the pruner's thread (nice), 0 to 19.</summary>
    public int Nice { get; init; } = 10;

    /// <summary>
    /// Blocks readahead may keep coming at once: twice max_connections, so that a connection that
    /// frees up starts on the next block at once, whether or not the reader has moved on (the
    /// store itself never has more than max_connections requests in flight).
    /// </summary>
    public int ReadAhead { get; init; } = 20;
}
