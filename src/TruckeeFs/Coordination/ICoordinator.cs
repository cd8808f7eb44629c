namespace TruckeeFs.Coordination;

/// <summary>
/// Coordination between the mounts of one filesystem (one process, or several hosts through
/// Redis). Every key a coordinator touches lives under its filesystem's prefix, so several
/// filesystems can share one server.
///
/// Threading: every member is safe to call from many threads at once.
/// Errors: a coordinator whose server is unreachable throws <see cref="CoordinatorException"/>
/// naming the server; nothing else is thrown except for bugs.
/// </summary>
public interface ICoordinator : IAsyncDisposable
{
    /// <summary>A short description for logs and status, such as "in-process" or "redis 127.0.0.1:6379/0".</summary>
    string Description { get; }

    /// <summary>
    /// Tries to take the named semaphore (one holder at a time) for at most <paramref name="ttl"/>;
    /// returns null if another owner holds it. The lease renews itself while it is held (before
    /// the TTL runs out) until disposed; if its owner dies, the semaphore frees itself when the
    /// TTL expires. Disposing releases it, but only if this owner still holds it.
    /// </summary>
    ValueTask<ISemaphoreLease?> TryAcquireAsync(string name, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="TryAcquireAsync"/>, waiting up to <paramref name="wait"/>; throws <see cref="TimeoutException"/> after that.</summary>
    ValueTask<ISemaphoreLease> AcquireAsync(string name, TimeSpan ttl, TimeSpan wait, CancellationToken cancellationToken = default);

    /// <summary>Adds or removes process states (read, write, delete, sync) of an inode, as the original did.</summary>
    ValueTask SetStateAsync(long inode, InodeStates states, bool on, CancellationToken cancellationToken = default);

    /// <summary>The inode's current states, combined over all mounts.</summary>
    ValueTask<InodeStates> GetStatesAsync(long inode, CancellationToken cancellationToken = default);

    /// <summary>This mount's identity in the per-inode states (what <see cref="ForgetMountAsync"/> takes).</summary>
    string MountId { get; }

    /// <summary>
    /// Removes every per-inode state the mount <paramref name="mountId"/> set: it died without
    /// clearing them, and the others must not wait for it.
    /// </summary>
    ValueTask ForgetMountAsync(string mountId, CancellationToken cancellationToken = default);

    /// <summary>Ephemeral key-value: sets <paramref name="key"/>, expiring after <paramref name="ttl"/> if given.</summary>
    ValueTask SetValueAsync(string key, string value, TimeSpan? ttl = null, CancellationToken cancellationToken = default);

    /// <summary>The value of <paramref name="key"/>, or null when absent or expired.</summary>
    ValueTask<string?> GetValueAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes <paramref name="key"/>; returns whether it existed.</summary>
    ValueTask<bool> DeleteValueAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Sends <paramref name="message"/> to every subscriber of <paramref name="channel"/> on every mount (this one included).</summary>
    ValueTask PublishAsync(string channel, string message, CancellationToken cancellationToken = default);

    /// <summary>Calls <paramref name="handler"/> for each message on <paramref name="channel"/> until the returned handle is disposed.</summary>
    ValueTask<IAsyncDisposable> SubscribeAsync(string channel, Action<string> handler, CancellationToken cancellationToken = default);

    /// <summary>Deletes every key of this filesystem (and nothing else); the <c>reset_redis</c> key.</summary>
    ValueTask ResetAsync(CancellationToken cancellationToken = default);
}

/// <summary>A held semaphore. Disposing releases it if this owner still holds it.</summary>
public interface ISemaphoreLease : IAsyncDisposable
{
    string Name { get; }

    /// <summary>The random token that identifies this owner.</summary>
    string OwnerToken { get; }

    /// <summary>False once the lease has expired or was lost (renewal failed).</summary>
    bool IsHeld { get; }
}

[Flags]
public enum InodeStates
{
    None = 0,
    Read = 1,
    Write = 2,
    Delete = 4,
    Sync = 8,
}

/// <summary>The coordination server is unreachable or failed; the message names it.</summary>
public sealed class CoordinatorException(string message, Exception? inner = null) : Exception(message, inner);
