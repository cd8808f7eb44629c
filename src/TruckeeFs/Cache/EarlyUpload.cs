namespace TruckeeFs.Cache;

/// <summary>
/// The upload of a staged block begun as soon as a sequential writer finished it, before the
/// close that seals its version, so that by the time the version is committed its blocks are
/// mostly stored already (see <see cref="FileContent"/>).
///
/// Until the block is let go of, it holds the <see cref="ContentCollector"/> off, as a commit in
/// flight does: identical bytes share a cap, so the object this upload returned may be one the
/// collector found unreferenced, and the coming commit will reference it.
/// </summary>
internal sealed class EarlyUpload(Task<string?> upload, IDisposable collectorHold)
{
    private IDisposable? _collectorHold = collectorHold;

    /// <summary>The cap the block was stored under; null if the upload failed (the commit stores the block again).</summary>
    public Task<string?> Cap => upload;

    /// <summary>Ends the hold on the collector; later calls do nothing.</summary>
    public void Release() => Interlocked.Exchange(ref _collectorHold, null)?.Dispose();
}
