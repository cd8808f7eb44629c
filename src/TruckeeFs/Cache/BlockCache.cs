using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TruckeeFs.Content;
using TruckeeFs.Vfs;

namespace TruckeeFs.Cache;

/// <summary>
/// Clean blocks on local disk, keyed by cap. A cap names immutable bytes, so a cached block is
/// never stale. A store that keeps its objects as local files is read in place, without a copy.
///
/// A block absent from the cache is streamed into it by one <see cref="BlockDownload"/>, which
/// every reader of that block shares; a reader waits only for the bytes it asks for, not for the
/// whole block. Blocks of open files can be pinned so that the <see cref="CachePruner"/> leaves
/// them alone. Readahead starts downloads only while fewer than <c>readAhead</c> are under way
/// (they queue for the store's connections in the order started); a download a reader waits for
/// always starts.
///
/// On disk: <c>blocks/&lt;sha256 of the cap&gt;</c> for complete blocks; a download writes
/// <c>&lt;name&gt;.&lt;random&gt;.part</c> and renames it when complete, so after a crash a
/// partial block is never taken for a complete one (leftover parts are deleted at start, and a
/// complete block's length is checked against the length the block map records).
///
/// Threading: every member is safe to call from many threads at once.
/// </summary>
public sealed class BlockCache
{
    private readonly IContentStore _store;
    private readonly int _readAhead;
    private readonly VfsStatistics _statistics;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, BlockDownload> _downloads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _pins = new(StringComparer.Ordinal);
    private long _cachedBytes;

    /// <param name="readAhead">Downloads readahead may keep under way (see <see cref="CacheOptions.ReadAhead"/>).</param>
    /// <param name="statistics">Counts hits, misses and downloaded bytes, and holds the cached bytes.</param>
    public BlockCache(IContentStore store, string cacheDirectory, int readAhead, VfsStatistics statistics)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(readAhead, 1);
        _store = store;
        _readAhead = readAhead;
        _statistics = statistics;
        BlocksDirectory = Directory.CreateDirectory(Path.Combine(cacheDirectory, "blocks")).FullName;
        long bytes = 0;
        foreach (var file in new DirectoryInfo(BlocksDirectory).EnumerateFiles())
        {
            // A download cut short by a crash: never a block.
            if (!IsBlockName(file.Name)) file.Delete();
            else bytes += file.Length;
        }
        SetCachedBytes(bytes);
    }

    /// <summary>Where complete blocks live, one file each.</summary>
    public string BlocksDirectory { get; }

    /// <summary>Raised after a download adds a block to the cache (the pruner checks its budget).</summary>
    public event Action? BlockAdded;

    /// <summary>Bytes of complete blocks in <see cref="BlocksDirectory"/>, as this cache knows them.</summary>
    public long CachedBytes => Interlocked.Read(ref _cachedBytes);

    /// <summary>How many blocks readahead may fetch at once.</summary>
    public int ReadAheadLimit => _readAhead;

    /// <summary>Downloads in flight.</summary>
    public int DownloadsInFlight
    {
        get
        {
            lock (_lock) return _downloads.Count;
        }
    }

    /// <summary>
    /// Takes over <paramref name="path"/>, whose bytes were just stored under <paramref name="cap"/>,
    /// as the cap's cached block (a rename, no copy), so that data written on this mount is never
    /// downloaded again. For a store that keeps objects as local files the file is just deleted.
    /// </summary>
    public void Adopt(string cap, string path)
    {
        if (_store.LocalPath(cap) is not null)
        {
            File.Delete(path);
            return;
        }
        File.Move(path, CachePath(cap), overwrite: true);
    }

    /// <summary>
    /// Opens a block of <paramref name="length"/> bytes for reading, starting its download if it
    /// is neither cached nor being downloaded. <paramref name="firstNeeded"/> is where the first
    /// read will be: a download starts there (see <see cref="BlockDownload"/>).
    /// </summary>
    public BlockReader Open(string cap, long length, long firstNeeded = 0)
    {
        if (_store.LocalPath(cap) is { } local)
        {
            _statistics.CacheHit();
            try
            {
                return new BlockReader(OpenRead(local), null);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                throw new ContentNotFoundException(cap);
            }
        }
        var path = CachePath(cap);
        lock (_lock)
        {
            if (!_downloads.TryGetValue(cap, out var download))
            {
                if (TryOpenComplete(path, length) is { } handle)
                {
                    _statistics.CacheHit();
                    return new BlockReader(handle, null);
                }
                download = Start(cap, length, path, firstNeeded);
            }
            _statistics.CacheMiss();
            return download.OpenReader();
        }
    }

    /// <summary>
    /// Starts downloading a block ahead of need, unless it is already coming or <c>readAhead</c>
    /// downloads are under way (then returns false). A block already on local disk (a local
    /// store's object, or cached) is read into the page cache instead, whatever the downloads.
    /// </summary>
    public bool Prefetch(string cap, long length)
    {
        var path = _store.LocalPath(cap);
        if (path is null)
        {
            path = CachePath(cap);
            lock (_lock)
            {
                if (_downloads.ContainsKey(cap)) return true;
                if (!File.Exists(path))
                {
                    if (_downloads.Count >= _readAhead) return false;
                    Start(cap, length, path, firstNeeded: 0);
                    return true;
                }
            }
        }
        // Nothing to download, but the disk read can start now instead of at the first read of
        // the block: a cold sequential read otherwise waits for the disk block by block. From a
        // pool thread: submitting a 4 MiB block's reads takes about a millisecond, which the read
        // that triggered readahead would otherwise wait for. A cached block pruned meanwhile is
        // simply not read.
        ThreadPool.UnsafeQueueUserWorkItem(static file => Posix.ReadAhead(file), path, preferLocal: false);
        return true;
    }

    /// <summary>Keeps the pruner away from a block until as many <see cref="Unpin"/> calls.</summary>
    public void Pin(string cap) => _pins.AddOrUpdate(FileName(cap), 1, (_, n) => n + 1);

    /// <summary>Undoes one <see cref="Pin"/>.</summary>
    public void Unpin(string cap)
    {
        var name = FileName(cap);
        while (_pins.TryGetValue(name, out var n))
        {
            if (n == 1 ? _pins.TryRemove(KeyValuePair.Create(name, 1)) : _pins.TryUpdate(name, n - 1, n)) return;
        }
    }

    /// <summary>Whether the block file called <paramref name="name"/> is pinned.</summary>
    internal bool IsPinned(string name) => _pins.ContainsKey(name);

    /// <summary>Whether <paramref name="name"/> is a complete block's file name (not a part).</summary>
    internal static bool IsBlockName(string name) => name.Length == 64 && !name.Contains('.', StringComparison.Ordinal);

    /// <summary>Deletes a block file the pruner chose; false if it is pinned (or already gone).</summary>
    internal bool Evict(string name)
    {
        if (IsPinned(name)) return false;
        var path = Path.Combine(BlocksDirectory, name);
        if (!File.Exists(path)) return false;
        File.Delete(path);
        return true;
    }

    /// <summary>Replaces the count of cached bytes with what the pruner measured.</summary>
    internal void SetCachedBytes(long bytes)
    {
        Interlocked.Exchange(ref _cachedBytes, bytes);
        _statistics.SetCachedBytes(bytes);
    }

    private void AddCachedBytes(long delta) => _statistics.SetCachedBytes(Interlocked.Add(ref _cachedBytes, delta));

    private BlockDownload Start(string cap, long length, string path, long firstNeeded)
    {
        var download = new BlockDownload(_store, cap, length, path, firstNeeded, _statistics);
        _downloads[cap] = download;
        _ = FinishAsync(download);
        return download;
    }

    private async Task FinishAsync(BlockDownload download)
    {
        var complete = await download.RunAsync().ConfigureAwait(false);
        lock (_lock) _downloads.Remove(download.Cap);
        if (!complete) return;
        AddCachedBytes(download.Length);
        BlockAdded?.Invoke();
    }

    /// <summary>A complete cached block; null if absent or of the wrong length (then deleted).</summary>
    private static SafeFileHandle? TryOpenComplete(string path, long length)
    {
        SafeFileHandle handle;
        try
        {
            handle = OpenRead(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        if (RandomAccess.GetLength(handle) != length)
        {
            // Not what the block map records: damaged (a crash of the machine), never trusted.
            handle.Dispose();
            File.Delete(path);
            return null;
        }
        // The modification time records the last access, for the pruner (atime is often off).
        File.SetLastWriteTimeUtc(handle, DateTime.UtcNow);
        return handle;
    }

    internal static SafeFileHandle OpenRead(string path) =>
        File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);

    private string CachePath(string cap) => Path.Combine(BlocksDirectory, FileName(cap));

    /// <summary>The file name a cached block has under the blocks folder (gc matches caps to files by it).</summary>
    internal static string FileName(string cap) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(cap)));
}
