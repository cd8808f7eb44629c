using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using TruckeeFs.Cache;
using TruckeeFs.Content;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

/// <summary>
/// POSIX semantics over the three seams (metadata, content, coordination), in the shape of the
/// FUSE low-level API but free of it: inode numbers are metadata ids, the kernel's lookup
/// counts are honoured, and an inode without names lives on while it is looked up or open.
///
/// Results are a positive errno (0 = success); exceptions mean a backend failed (the caller
/// answers EIO) or a bug. Every member is safe to call from many threads at once.
/// </summary>
public sealed partial class Vfs : IAsyncDisposable
{
    public const long RootInode = 1;
    private const int NameMax = 255;
    private static readonly TimeSpan UsageLifetime = TimeSpan.FromSeconds(2);

    private readonly IMetaStore _meta;
    private readonly ICoordinator _coordinator;
    private readonly ITreeMirror _mirror;
    private readonly VfsOptions _options;
    private readonly ILogger _log;
    private readonly ContentServices _content;
    private readonly CachePruner? _pruner;
    private readonly Lock _liveLock = new();
    private readonly Dictionary<long, LiveInode> _live = [];
    private CountedUsage? _usage;
    private readonly ConcurrentDictionary<ulong, FileHandle> _handles = new();
    private readonly MetadataCache _cache;
    private long _nextHandle;

    /// <param name="coordinator">How this mount coordinates with the other mounts of the filesystem.</param>
    /// <param name="mirror">Told of every committed change of names and contents (MIRROR mode), or <see cref="NullTreeMirror"/>.</param>
    public Vfs(IMetaStore meta, IContentStore store, ICoordinator coordinator, ITreeMirror mirror, VfsOptions options, ILogger log)
    {
        _meta = meta;
        _coordinator = coordinator;
        _mirror = mirror;
        _options = options;
        _log = log;
        Statistics = new VfsStatistics(() => meta.CommittedWrites);
        _cache = new MetadataCache(TimeSpan.FromSeconds(options.AttributeTimeout), TimeSpan.FromSeconds(options.EntryTimeout));
        Directory.CreateDirectory(options.CacheDirectory);
        _content = new ContentServices(meta, store, new BlockCache(store, options.CacheDirectory, options.Cache.ReadAhead, Statistics),
            new ContentCollector(store, meta), options.CacheDirectory, options.BlockSize, Statistics, MarkPendingAsync);
        _pruner = CachePruner.Start(_content.Cache, options.Cache, log);
        _uploads = NewUploadQueue();
    }

    public VfsOptions Options => _options;

    /// <summary>Counters of the data path (cache, staging, uploads) for status reports.</summary>
    public VfsStatistics Statistics { get; }

    /// <summary>
    /// Makes the state a previous mount left consistent: reclaims inodes that were unlinked while
    /// open, and queues the commit of every version it sealed (closed) but did not commit (it was
    /// killed); until those land, this mount serves them from their staged blocks.
    /// </summary>
    public async Task RecoverAsync()
    {
        foreach (var orphan in _meta.OrphanInodes())
            await ReclaimAsync(orphan).ConfigureAwait(false);
        await RecoverSealedVersionsAsync().ConfigureAwait(false);
    }

    /// <summary>Commits every open file's changes and everything queued for upload, and ends the session, for a clean unmount.</summary>
    public async ValueTask DisposeAsync()
    {
        await DrainUploadsAsync().ConfigureAwait(false);
        await _content.Collector.CollectAsync().ConfigureAwait(false);
        await EndSessionAsync().ConfigureAwait(false);
        _pruner?.Dispose();
    }

    public int Lookup(long parent, ReadOnlySpan<byte> name, out Inode entry)
    {
        entry = null!;
        if (name.Length > NameMax) return Errno.ENAMETOOLONG;
        var key = name.ToArray();
        if (_cache.GetName(parent, key) is { } cached && _cache.GetInode(cached) is { } row)
        {
            entry = Remember(row);
            return 0;
        }
        if (_cache.IsAbsent(parent, key)) return Errno.ENOENT;
        var ticket = _cache.Ticket();
        var found = _meta.Lookup(parent, key);
        if (found is null) return Errno.ENOENT;
        _cache.PutName(parent, key, found.Id, ticket);
        _cache.PutInode(found, ticket);
        entry = Remember(found);
        return 0;
    }

    /// <summary>The kernel dropped <paramref name="count"/> references to an inode.</summary>
    public void Forget(long inode, long count)
    {
        bool unused;
        lock (_liveLock)
        {
            if (!_live.TryGetValue(inode, out var live)) return;
            live.Lookups -= count;
            unused = live.Lookups <= 0 && live.Opens == 0;
            if (unused) _live.Remove(inode);
        }
        if (unused && CurrentInode(inode) is { Nlink: 0 })
            _ = ReclaimInBackgroundAsync(inode);
    }

    public int GetAttributes(long inode, out Inode attributes)
    {
        var row = CachedInode(inode);
        attributes = row is null ? null! : Overlay(row);
        return row is null ? Errno.ENOENT : 0;
    }

    public int ReadLink(long inode, out byte[] target)
    {
        var row = CachedInode(inode);
        target = row?.Target ?? [];
        if (row is null) return Errno.ENOENT;
        return row.IsSymlink ? 0 : Errno.EINVAL;
    }

    /// <summary>fsyncdir(2): makes committed metadata durable.</summary>
    public void SyncMetadata() => _meta.Sync();

    public FilesystemStatistics StatFs()
    {
        var usage = RecentUsage();
        var disk = Posix.StatVfs(_options.CacheDirectory);
        const long blockSize = 4096;
        var scale = (double)disk.FragmentSize / blockSize;
        var total = (long)(disk.Blocks * scale);
        var free = (long)(disk.BlocksFree * scale);
        var available = (long)(disk.BlocksAvailable * scale);
        // Inodes are rows: the only limit is the database, so report plenty free.
        const long freeInodes = 1L << 40;
        return new FilesystemStatistics(blockSize, Math.Max(total, (usage.Bytes + blockSize - 1) / blockSize), free, available,
            usage.Inodes + freeInodes, freeInodes, NameMax);
    }

    /// <summary>
    /// The filesystem's inode and byte counts, at most <see cref="UsageLifetime"/> old: counting
    /// scans every inode row, and df, file managers and programs checking free space ask often.
    /// </summary>
    private FilesystemUsage RecentUsage()
    {
        var counted = Volatile.Read(ref _usage);
        if (counted is not null && Stopwatch.GetElapsedTime(counted.Taken) < UsageLifetime) return counted.Usage;
        var usage = _meta.Usage();
        Volatile.Write(ref _usage, new CountedUsage(usage, Stopwatch.GetTimestamp()));
        return usage;
    }

    /// <summary>
    /// The inode's row, from the cache when it has it: as fresh as the attributes the kernel
    /// caches (see <see cref="MetadataCache"/>), so for answers to the kernel, not for decisions
    /// that other mounts' latest commits must reach (those take <see cref="CurrentInode"/>).
    /// </summary>
    private Inode? CachedInode(long inode)
    {
        if (_cache.GetInode(inode) is { } cached) return cached;
        var ticket = _cache.Ticket();
        var row = _meta.GetInode(inode);
        if (row is not null) _cache.PutInode(row, ticket);
        return row;
    }

    /// <summary>
    /// The inode's committed row as of now. Only this mount changes a database no other mount
    /// can use, and every change it makes drops what it changed from the cache, so there the
    /// cache is current; a shared database is asked.
    /// </summary>
    private Inode? CurrentInode(long inode)
    {
        if (!_meta.IsShared) return CachedInode(inode);
        var ticket = _cache.Ticket();
        var row = _meta.GetInode(inode);
        if (row is not null) _cache.PutInode(row, ticket);
        return row;
    }

    /// <summary>Counts a kernel reference to the inode (an entry reply), and returns its current attributes.</summary>
    public Inode Remember(Inode inode)
    {
        lock (_liveLock)
        {
            if (!_live.TryGetValue(inode.Id, out var live)) _live[inode.Id] = live = new LiveInode();
            live.Lookups++;
        }
        return Overlay(inode);
    }

    /// <summary>The attributes with the newest size, times, mode and owner of a file whose changes are not yet committed (or just committed).</summary>
    private Inode Overlay(Inode row)
    {
        FileContent? content;
        Inode? committedHere;
        lock (_liveLock)
        {
            _live.TryGetValue(row.Id, out var live);
            content = live?.Content;
            committedHere = live?.LastCommitted;
        }
        // A row read just before a commit of this mount landed is older than the row that
        // commit left (which may have changed mode and owner too): start from the newer one.
        // The content knows it first; the live inode keeps it once the content is gone (its
        // commit done and nobody holding it), which may happen between the read and this.
        if (content?.LastCommitted is { } committed && committed.Version > (committedHere?.Version ?? -1)) committedHere = committed;
        if (committedHere is not null && committedHere.Version > row.Version) row = committedHere.Clone();
        if (content is null) return row;
        if (!content.HasUncommitted && row.Version >= content.Version) return row;
        var copy = row.Clone();
        content.ChangedAttributes.ApplyTo(copy);
        copy.Size = content.Size;
        copy.Allocated = content.Allocated;
        copy.Mtime = content.Mtime;
        copy.Ctime = Math.Max(row.Ctime, content.Ctime);
        return copy;
    }

    /// <summary>
    /// New contents landed in metadata, whichever path committed them (close, fsync, a background
    /// upload, recovery): tells everyone who must know, and keeps the row as the commit left it
    /// (<paramref name="committed"/>; <paramref name="ticket"/> was taken before the commit), so
    /// that a stat of the file just closed costs no query.
    /// </summary>
    private void ContentCommitted(Inode committed, MetadataCache.RowTicket ticket)
    {
        lock (_liveLock)
        {
            if (_live.TryGetValue(committed.Id, out var live) && committed.Version > (live.LastCommitted?.Version ?? -1)) live.LastCommitted = committed.Clone();
        }
        MirrorFile(committed.Id);
        Publish(Invalidation.Contents(committed.Id, committed.Version));
        _cache.PutChanged(committed, ticket);
    }

    /// <summary>Deletes a nameless inode unless it is still looked up or open.</summary>
    private void ReclaimIfUnused(Inode? inode)
    {
        if (inode is null || inode.Nlink > 0) return;
        lock (_liveLock)
        {
            if (_live.ContainsKey(inode.Id)) return;
        }
        _ = ReclaimInBackgroundAsync(inode.Id);
    }

    private async Task ReclaimInBackgroundAsync(long inode)
    {
        try
        {
            await ReclaimAsync(inode).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.ReclaimFailed(_log, inode, e);
        }
    }

    private async Task ReclaimAsync(long inode)
    {
        // This mount's own reference of a file it closed must not keep the file alive.
        ForgetClosedFiles([inode]);
        _meta.DeleteInode(inode, out var unreferenced);
        _cache.Forget(inode);
        _content.Collector.Discard(unreferenced);
        await _content.Collector.CollectAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes the objects a reclaimed inode left unreferenced on a thread-pool thread: the
    /// operation answers without waiting for it (a local object's deletion is a file system call,
    /// which would otherwise run before the answer).
    /// </summary>
    private void CollectInBackground(IReadOnlyList<string> unreferenced)
    {
        if (unreferenced.Count == 0) return;
        _content.Collector.Discard(unreferenced);
        _ = Task.Run(async () =>
        {
            try
            {
                await _content.Collector.CollectAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Log.CollectFailed(_log, e);
            }
        });
    }

    private static long Now() => DateTime.UtcNow.Ticks * 100 - DateTime.UnixEpoch.Ticks * 100;

    private static bool ValidName(ReadOnlySpan<byte> name, out int status)
    {
        status = name.Length > NameMax ? Errno.ENAMETOOLONG : name.Length == 0 ? Errno.ENOENT : 0;
        return status == 0;
    }

    /// <summary>Filesystem usage as counted at <see cref="Taken"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    private sealed record CountedUsage(FilesystemUsage Usage, long Taken);

    /// <summary>An inode the kernel holds references to, or that is open.</summary>
    private sealed class LiveInode
    {
        public long Lookups;
        public int Opens;
        public FileContent? Content;

        /// <summary>The content version this mount last opened the file at: the kernel's page cache holds it.</summary>
        public long ServedVersion = -1;

        /// <summary>The row the newest commit of this mount left (see <see cref="Overlay"/>).</summary>
        public Inode? LastCommitted;
    }
}
