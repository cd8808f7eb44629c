namespace TruckeeFs.Cache;

/// <summary>
/// The upload of a staged block due as soon as a sequential writer finished it, before the close
/// that seals its version, so that by the time the version is committed its blocks are mostly
/// stored already (see <see cref="FileContent"/>). A mount runs a few at a time, in the order
/// the blocks were finished (see <see cref="ContentServices.UploadEarly"/>); the commit awaits
/// the block's.
///
/// Until the block is let go of, it holds the <see cref="ContentCollector"/> off, as a commit in
/// flight does: identical bytes share a cap, so the object this upload returns may be one the
/// collector found unreferenced, and the coming commit will reference it.
/// </summary>
internal sealed class EarlyUpload(StagedBlock block, IDisposable collectorHold)
{
    private readonly TaskCompletionSource<string?> _cap = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IDisposable? _collectorHold = collectorHold;

    public StagedBlock Block => block;

    /// <summary>The cap the block was stored under; null if the upload failed or the block was let go of first (the commit stores it again, and reports what fails).</summary>
    public Task<string?> Cap => _cap.Task;

    /// <summary>Stores the block through <paramref name="store"/>, which is given its path, and completes <see cref="Cap"/>.</summary>
    public async Task RunAsync(Func<string, Task<string>> store)
    {
        string? cap = null;
        try
        {
            if (block.StartUpload(store) is { } upload) cap = await upload.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever failed, the commit stores the block again, and reports what fails then.
        }
        _cap.SetResult(cap);
    }

    /// <summary>Ends the hold on the collector; later calls do nothing.</summary>
    public void Release() => Interlocked.Exchange(ref _collectorHold, null)?.Dispose();
}
