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
    /// Whether storing an object is a local disk operation taking microseconds: then there is no
    /// latency to hide, and a close commits what it sealed before it returns instead of leaving
    /// it to the background upload queue.
    /// </summary>
    bool IsLocal { get; }

    /// <summary>
    /// Stores the whole contents of the local file at <paramref name="path"/> as a new immutable
    /// object and returns its cap. Idempotent: storing the same bytes twice may return the same
    /// cap. The file is opened before this returns (before its first await), so the caller may
    /// rename or delete it as soon as the call returns; its bytes must not change until the
    /// returned task completes, nor afterwards (a local store may have hard-linked it).
    /// </summary>
    ValueTask<string> PutAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads up to <paramref name="buffer"/>.Length bytes of the object at
    /// <paramref name="offset"/>; returns the count, less than asked only at the object's end.
    /// </summary>
    ValueTask<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends bytes [<paramref name="offset"/>, <paramref name="offset"/>+<paramref name="length"/>)
    /// of the object to <paramref name="sink"/> in order, as they arrive, so a caller can use the
    /// first bytes before the last have come. Returns the count sent, less than asked only at the
    /// object's end. Each byte reaches the sink once, even if the store retries.
    /// This default reads in chunks through <see cref="ReadAsync"/>; remote stores stream.
    /// </summary>
    async ValueTask<long> StreamAsync(string cap, long offset, long length, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink,
        CancellationToken cancellationToken = default)
    {
        var buffer = new byte[(int)Math.Clamp(length, 1, 1 << 20)];
        long done = 0;
        while (done < length)
        {
            var n = await ReadAsync(cap, offset + done, buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - done)), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            await sink(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            done += n;
        }
        return done;
    }

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
