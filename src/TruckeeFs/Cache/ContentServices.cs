using System.Globalization;
using TruckeeFs.Content;
using TruckeeFs.Meta;
using TruckeeFs.Vfs;

namespace TruckeeFs.Cache;

/// <summary>
/// What the contents of every file share: stores, cache, staging area, block size, counters,
/// and how a file tells other mounts that it has a commit pending.
/// </summary>
internal sealed class ContentServices(IMetaStore meta, IContentStore store, BlockCache cache, ContentCollector collector, string cacheDirectory,
    long blockSize, VfsStatistics statistics, Func<long, bool, ValueTask> markPending)
{
    private const string JournalSuffix = ".commit";
    private long _nextStaged = DateTime.UtcNow.Ticks;
    private readonly Lock _earlyLock = new();
    private readonly Queue<EarlyUpload> _earlyWaiting = new();
    private int _earlyRunning;

    public IMetaStore Meta => meta;
    public IContentStore Store => store;
    public BlockCache Cache => cache;
    public ContentCollector Collector => collector;
    public long BlockSize => blockSize;
    public VfsStatistics Statistics => statistics;

    /// <summary>
    /// Turns the cross-mount "commit pending" marker of an inode on or off. Throws
    /// <see cref="Coordination.CoordinatorException"/> when the coordinator is unreachable.
    /// </summary>
    public ValueTask MarkPendingAsync(long inode, bool pending) => markPending(inode, pending);

    /// <summary>
    /// Runs <paramref name="upload"/> as soon as one of the places for early uploads is free, in
    /// the order they came. There are as many places as readahead's downloads (twice
    /// max_connections): enough that every connection that frees up starts the next block at
    /// once, few enough that reads still find a connection soon while a writer outpaces the store.
    /// </summary>
    public void UploadEarly(EarlyUpload upload)
    {
        lock (_earlyLock)
        {
            if (_earlyRunning == cache.ReadAheadLimit)
            {
                _earlyWaiting.Enqueue(upload);
                return;
            }
            _earlyRunning++;
        }
        _ = RunEarlyUploadsAsync(upload);
    }

    /// <summary>Stores a staged block as a new object and counts its bytes as uploaded.</summary>
    public async Task<string> StoreAsync(string path, long length, CancellationToken cancellationToken = default)
    {
        var cap = await store.PutAsync(path, cancellationToken).ConfigureAwait(false);
        statistics.Uploaded(length);
        return cap;
    }

    /// <summary>Runs early uploads in one place, the given one, then the waiting ones, until none waits.</summary>
    private async Task RunEarlyUploadsAsync(EarlyUpload? upload)
    {
        while (upload is not null)
        {
            var length = upload.Block.Length;
            await upload.RunAsync(path => StoreAsync(path, length)).ConfigureAwait(false);
            lock (_earlyLock)
            {
                if (!_earlyWaiting.TryDequeue(out upload)) _earlyRunning--;
            }
        }
    }

    /// <summary>
    /// Where staged blocks and commit journal entries live: one flat folder, a file per staged
    /// block named "inode.index.unique" (with ".w" while writable) and a journal entry per file
    /// with a sealed version named "inode.commit".
    /// </summary>
    public string StagingRoot { get; } = Directory.CreateDirectory(Path.Combine(cacheDirectory, "staging")).FullName;

    /// <summary>The frozen name of a new staged block (a block staged again after a seal gets a new one).</summary>
    public string NewStagedPath(long inode, long index) =>
        Path.Combine(StagingRoot, string.Create(CultureInfo.InvariantCulture, $"{inode}.{index}.{Interlocked.Increment(ref _nextStaged):x}"));

    /// <summary>The journal entry of an inode's sealed version.</summary>
    public string JournalPath(long inode) =>
        Path.Combine(StagingRoot, string.Create(CultureInfo.InvariantCulture, $"{inode}{JournalSuffix}"));

    /// <summary>
    /// What a previous mount left in the staging area, per inode: the sealed version its journal
    /// entry names (closed, not committed), and the newest staged block of each index written
    /// after that (never closed). Older unnamed copies are deleted. Damaged entries are reported
    /// through <paramref name="damaged"/> and kept, with every staged file of their inode, for
    /// inspection.
    /// </summary>
    public IReadOnlyList<Leftovers> ScanStaging(Action<string, Exception> damaged)
    {
        var found = new Dictionary<long, Leftovers>();
        var named = new HashSet<string>(StringComparer.Ordinal);
        var damagedInodes = new HashSet<long>();
        foreach (var path in Directory.EnumerateFiles(StagingRoot, "*" + JournalSuffix))
        {
            var name = Path.GetFileName(path);
            if (!long.TryParse(name.AsSpan(0, name.Length - JournalSuffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var inode)) continue;
            try
            {
                var version = SealedVersion.ReadJournal(inode, path);
                found[inode] = new Leftovers(inode, version, []);
                foreach (var staged in version.StagedBlocks) named.Add(staged.Path);
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                damaged(path, e);
                damagedInodes.Add(inode);
            }
        }
        // Writable blocks (never sealed) are kept, the newest of each index; frozen blocks no
        // journal entry names belong to versions already committed or superseded.
        var newest = new Dictionary<(long Inode, long Index), (long Unique, string Path)>();
        foreach (var path in Directory.EnumerateFiles(StagingRoot))
        {
            if (named.Contains(path) || path.EndsWith(JournalSuffix, StringComparison.Ordinal)) continue;
            var fields = Path.GetFileName(path).Split('.');
            if (fields.Length >= 2
                && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
                && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                if (damagedInodes.Contains(inode)) continue;
                if (fields is [_, _, var hex, "w"] && long.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var unique))
                {
                    if (newest.TryGetValue((inode, index), out var other))
                    {
                        if (other.Unique > unique)
                        {
                            File.Delete(path);
                            continue;
                        }
                        File.Delete(other.Path);
                    }
                    newest[(inode, index)] = (unique, path);
                    continue;
                }
            }
            File.Delete(path);
        }
        foreach (var ((inode, index), (_, path)) in newest)
        {
            if (!found.TryGetValue(inode, out var leftovers)) found[inode] = leftovers = new Leftovers(inode, null, []);
            leftovers.Unsealed.Add(StagedBlock.OpenFrozen(index, path));
        }
        return [.. found.Values];
    }
}

/// <summary>What a killed mount left staged for one inode: its sealed version, and blocks written after it.</summary>
internal sealed record Leftovers(long Inode, SealedVersion? Sealed, List<StagedBlock> Unsealed);
