using TruckeeFs.Meta;
using TruckeeFs.Operations;

namespace TruckeeFs.Content;

/// <summary>
/// Keeps a copy of the directory tree in the content store, so that the data stays browsable
/// and recoverable with the store's own tools (MIRROR mode); the metadata database stays the
/// truth. The Vfs tells the mirror about every change of names and contents after the change
/// has been committed to the metadata store, with the paths as they were at that moment.
///
/// What is mirrored: directories, and regular files with their contents (see
/// <see cref="FileWritten"/>). Symlinks, devices, FIFOs and sockets are not: the mirror never
/// hears of them, and a rename or removal of such a name finds nothing to move or remove. Hard
/// links are mirrored as separate names for the same contents, each updated when the Vfs reports
/// it.
///
/// Threading and order: every method returns at once (it only queues work, never waiting for the
/// network, so a FUSE request is never held up); the work is applied in the background in the
/// order the calls were made, retried until it succeeds. Calls for one path must therefore be
/// made in the order their metadata changes committed; the kernel already orders dependent
/// requests (a child is created only after its parent's mkdir returned). Safe to call from many
/// threads at once.
///
/// Errors: none are reported to the caller. Transient failures are retried with backoff for as
/// long as the mirror runs; refusals (the tree in the store does not look as expected) are logged
/// and the operation is dropped. The queue is in memory: a crash loses what was not yet applied,
/// which <see cref="NeedsResync"/> then tells the next mount, and <see cref="ResyncAsync"/> repairs.
/// </summary>
public interface ITreeMirror : IAsyncDisposable
{
    /// <summary>False for <see cref="NullTreeMirror"/> (FLAT mode): callers may skip computing paths.</summary>
    bool IsEnabled { get; }

    /// <summary>For the start-up line and logs; never contains a secret.</summary>
    string Description { get; }

    /// <summary>A directory was made (mkdir). Parents missing in the mirror are made too.</summary>
    void DirectoryCreated(TreePath path);

    /// <summary>
    /// A regular file at <paramref name="path"/> has new committed contents, or was just created
    /// (<paramref name="size"/> 0, no blocks). <paramref name="blocks"/> is its whole block map
    /// (<see cref="IMetaStore.GetBlocks"/>). Replaces whatever the mirror had at that path.
    /// </summary>
    void FileWritten(TreePath path, long size, IReadOnlyList<BlockRef> blocks);

    /// <summary>rename(2) without flags or with RENAME_NOREPLACE: <paramref name="to"/> now names what <paramref name="from"/> named; what <paramref name="to"/> named before is gone.</summary>
    void Renamed(TreePath from, TreePath to);

    /// <summary>rename(2) with RENAME_EXCHANGE: the two names swapped what they name.</summary>
    void Exchanged(TreePath first, TreePath second);

    /// <summary>A name was removed: unlink(2) of a file (other hard links stay) or rmdir(2).</summary>
    void Removed(TreePath path);

    /// <summary>Completes once everything queued before the call has been applied or given up.</summary>
    Task FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// True when the tree in the store may differ from the metadata because the previous mount
    /// with the same cache directory stopped without applying every update (it was killed,
    /// crashed, gave up waiting for the store, or had updates refused). <see cref="ResyncAsync"/>
    /// should then run before this mount changes anything; a resync that leaves nothing
    /// differing clears it.
    /// </summary>
    bool NeedsResync { get; }

    /// <summary>
    /// Compares the tree in the store with the metadata's, directory by directory, and with
    /// <paramref name="repair"/> changes the store's tree where they differ: adds what is
    /// missing, replaces what is wrong, removes what the metadata does not have. Each directory
    /// is listed once; what agrees is not touched; the metadata is only read.
    ///
    /// Call it while nothing is queued and nothing else calls the mirror (at mount before
    /// serving, or on a mirror opened for this alone): updates applied after it would meet a
    /// tree that is already ahead of them. Updates other mounts apply meanwhile may race with it.
    /// </summary>
    /// <exception cref="ContentStoreException">The store failed (nothing is lost: run it again).</exception>
    /// <exception cref="MetaStoreException">The metadata database failed.</exception>
    Task<MirrorResyncReport> ResyncAsync(IMetaStore meta, bool repair, Action<ProgressReport>? progress = null, CancellationToken cancellationToken = default);
}

/// <summary>
/// One place where the mirror differed from the metadata, at <see cref="Path"/> in the
/// filesystem. <see cref="Kind"/>: <c>missing</c> (the metadata has it, the mirror not),
/// <c>wrong</c> (the mirror has something else under that name), <c>extra</c> (the mirror has a
/// name the metadata does not).
/// </summary>
public sealed record MirrorDifference(string Kind, string Path, string Detail);

/// <summary>
/// What a resync found (<see cref="Differences"/>) and, when it repaired, could not repair
/// (<see cref="Remaining"/>; without repair, every difference remains).
/// </summary>
public sealed record MirrorResyncReport(
    IReadOnlyList<MirrorDifference> Differences, IReadOnlyList<MirrorDifference> Remaining, bool Repaired, long DirectoriesListed, long EntriesChecked)
{
    public static MirrorResyncReport Nothing { get; } = new([], [], false, 0, 0);

    /// <summary>The mirror agreed with the metadata, or was made to.</summary>
    public bool InStep => Remaining.Count == 0;
}

/// <summary>FLAT mode: nothing is mirrored.</summary>
public sealed class NullTreeMirror : ITreeMirror
{
    public static NullTreeMirror Instance { get; } = new();

    private NullTreeMirror()
    {
    }

    public bool IsEnabled => false;

    public string Description => "none (FLAT)";

    public void DirectoryCreated(TreePath path)
    {
    }

    public void FileWritten(TreePath path, long size, IReadOnlyList<BlockRef> blocks)
    {
    }

    public void Renamed(TreePath from, TreePath to)
    {
    }

    public void Exchanged(TreePath first, TreePath second)
    {
    }

    public void Removed(TreePath path)
    {
    }

    public Task FlushAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public bool NeedsResync => false;

    public Task<MirrorResyncReport> ResyncAsync(IMetaStore meta, bool repair, Action<ProgressReport>? progress = null, CancellationToken cancellationToken = default) =>
        Task.FromResult(MirrorResyncReport.Nothing);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
