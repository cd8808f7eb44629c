using System.Collections.Concurrent;
using TruckeeFs.Content;
using TruckeeFs.Meta;

namespace TruckeeFs.Cache;

/// <summary>
/// Deletes objects that no block map references any more. Identical bytes share a cap, so a
/// commit may take a new reference to an object between storing it and committing the
/// metadata; deletion therefore runs only while no commit is in flight (new commits wait for
/// it), and re-checks in metadata that the object is still unreferenced.
/// </summary>
internal sealed class ContentCollector(IContentStore store, IMetaStore meta)
{
    private readonly SemaphoreSlim _mutex = new(1, 1);
    private readonly ConcurrentQueue<string> _garbage = new();
    private int _commitsInFlight;

    /// <summary>Marks a commit in flight until the result is disposed.</summary>
    public async ValueTask<CommitScope> EnterCommitAsync()
    {
        await _mutex.WaitAsync().ConfigureAwait(false);
        Interlocked.Increment(ref _commitsInFlight);
        _mutex.Release();
        return new CommitScope(this);
    }

    /// <summary>Queues caps a commit left unreferenced.</summary>
    public void Discard(IReadOnlyList<string> caps)
    {
        foreach (var cap in caps) _garbage.Enqueue(cap);
    }

    /// <summary>Deletes queued objects if no commit is in flight; otherwise leaves them for a later call.</summary>
    public async Task CollectAsync()
    {
        if (_garbage.IsEmpty) return;
        await _mutex.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _commitsInFlight) != 0) return;
            while (_garbage.TryDequeue(out var cap))
            {
                if (meta.IsUnreferenced(cap))
                    await store.DeleteAsync(cap).ConfigureAwait(false);
            }
        }
        finally
        {
            _mutex.Release();
        }
    }

    internal readonly struct CommitScope(ContentCollector owner) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref owner._commitsInFlight);
    }
}
