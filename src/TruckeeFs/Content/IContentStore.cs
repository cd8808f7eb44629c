namespace TruckeeFs.Content;

/// <summary>
/// Where file contents live: immutable objects named by caps. A cap never changes meaning, so
/// anything read through a cap may be cached forever.
///
/// Threading: every member is safe to call from many threads at once.
/// Errors: a store that is unreachable or failing throws <see cref="ContentStoreException"/>
/// (after its own retries for transient failures); a cap the store does not hold throws
/// <see cref="ContentNotFoundException"/>. Nothing else is thrown except for bugs.
/// </summary>
public interface IContentStore : IAsyncDisposable
{
    /// <summary>A short description for logs and status, such as "local /var/lib/x" or "tahoe http://…".</summary>
    string Description { get; }

    /// <summary>
    /// Stores the whole contents of the local file at <paramref name="path"/> as a new immutable
    /// object and returns its cap. Idempotent: storing the same bytes twice may return the same
    /// cap. The caller must not change the file during the call; afterwards the caller may delete
    /// it (a local store may have hard-linked it).
    /// </summary>
    ValueTask<string> PutAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads up to <paramref name="buffer"/>.Length bytes of the object at
    /// <paramref name="offset"/>; returns the count, less than asked only at the object's end.
    /// </summary>
    ValueTask<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>
    /// Drops an object no longer referenced. Idempotent: deleting an absent object succeeds.
    /// Stores that cannot delete (Tahoe immutable files expire with their leases) do nothing.
    /// </summary>
    ValueTask DeleteAsync(string cap, CancellationToken cancellationToken = default);

    /// <summary>
    /// For stores that keep objects as local files, the object's file, so the cache reads it in
    /// place instead of copying it; null for remote stores.
    /// </summary>
    string? LocalPath(string cap);
}

/// <summary>The content store failed (unreachable, timed out, or refused the request).</summary>
public class ContentStoreException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>The content store does not hold the object a cap names.</summary>
public sealed class ContentNotFoundException(string cap) : ContentStoreException($"content not found: {cap}");
