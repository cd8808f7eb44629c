namespace TruckeeFs.Vfs;

/// <summary>
/// Counters of one mount's data path, for `truckeefs status`. Counters only grow; gauges are
/// set by their owner. Updated with Interlocked from any thread; <see cref="Snapshot"/> reads
/// them all at once (each value is exact, the set is not a transaction).
/// </summary>
/// <param name="metadataWrites">Write transactions the metadata store committed so far.</param>
public sealed class VfsStatistics(Func<long> metadataWrites)
{
    private long _cacheHits;
    private long _cacheMisses;
    private long _bytesDownloaded;
    private long _bytesUploaded;
    private long _uploadFailures;
    private long _cachedBytes;
    private long _stagedBytes;
    private long _uploadQueue;

    /// <summary>A block read found in the local cache (or a local content store).</summary>
    public void CacheHit() => Interlocked.Increment(ref _cacheHits);

    /// <summary>A block read that had to fetch from the content store.</summary>
    public void CacheMiss() => Interlocked.Increment(ref _cacheMisses);

    public void Downloaded(long bytes) => Interlocked.Add(ref _bytesDownloaded, bytes);

    public void Uploaded(long bytes) => Interlocked.Add(ref _bytesUploaded, bytes);

    public void UploadFailed() => Interlocked.Increment(ref _uploadFailures);

    /// <summary>Bytes of clean blocks held in the cache folder (set by whoever measures it).</summary>
    public void SetCachedBytes(long bytes) => Interlocked.Exchange(ref _cachedBytes, bytes);

    /// <summary>Changes the bytes staged on local disk and not yet committed by <paramref name="delta"/>.</summary>
    public void AddStagedBytes(long delta) => Interlocked.Add(ref _stagedBytes, delta);

    /// <summary>Changes the number of files waiting for upload by <paramref name="delta"/>.</summary>
    public void AddQueuedUploads(long delta) => Interlocked.Add(ref _uploadQueue, delta);

    public VfsStatisticsSnapshot Snapshot() => new(
        Interlocked.Read(ref _cacheHits), Interlocked.Read(ref _cacheMisses), Interlocked.Read(ref _bytesDownloaded),
        Interlocked.Read(ref _bytesUploaded), Interlocked.Read(ref _uploadFailures), Interlocked.Read(ref _cachedBytes),
        Interlocked.Read(ref _stagedBytes), Interlocked.Read(ref _uploadQueue), metadataWrites());
}

/// <summary>The values of <see cref="VfsStatistics"/> at one moment.</summary>
public sealed record VfsStatisticsSnapshot(
    long CacheHits, long CacheMisses, long BytesDownloaded, long BytesUploaded, long UploadFailures,
    long CachedBytes, long StagedBytes, long UploadQueue, long MetadataWrites)
{
    /// <summary>Hits over all block reads, 0 to 1 (1 before any read).</summary>
    public double HitRatio => CacheHits + CacheMisses == 0 ? 1.0 : (double)CacheHits / (CacheHits + CacheMisses);
}
