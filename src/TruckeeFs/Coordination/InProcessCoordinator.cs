using System.Globalization;

namespace TruckeeFs.Coordination;

/// <summary>
/// Coordination inside one process, for the embedded default (one mount, no Redis). Keys and
/// semantics mirror <see cref="RedisCoordinator"/>: state lives in a <see cref="Backplane"/>,
/// which several coordinators (several "mounts") may share, each under a key prefix, exactly as
/// several hosts share one Redis server.
/// </summary>
public sealed partial class InProcessCoordinator : ICoordinator, ISemaphoreStore
{
    private readonly Backplane _backplane;
    private readonly string _prefix;
    private readonly string _mountId = Guid.NewGuid().ToString("N");
    private readonly SemaphoreLeases _leases;
    private int _disposed;

    /// <summary>A coordinator with a backplane of its own.</summary>
    public InProcessCoordinator()
        : this(new Backplane(), "")
    {
    }

    /// <summary>A coordinator sharing <paramref name="backplane"/> with others, its keys under <paramref name="keyPrefix"/>.</summary>
    public InProcessCoordinator(Backplane backplane, string keyPrefix)
    {
        ArgumentNullException.ThrowIfNull(backplane);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        _backplane = backplane;
        _prefix = keyPrefix;
        _leases = new SemaphoreLeases(this);
    }

    public string Description => "in-process";

    public ValueTask<ISemaphoreLease?> TryAcquireAsync(string name, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _leases.TryAcquireAsync(name, ttl, cancellationToken);
    }

    public ValueTask<ISemaphoreLease> AcquireAsync(string name, TimeSpan ttl, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _leases.AcquireAsync(name, ttl, wait, cancellationToken);
    }

    public ValueTask SetStateAsync(long inode, InodeStates states, bool on, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        _backplane.SetStates(StateKey(inode), _mountId, states, on);
        return ValueTask.CompletedTask;
    }

    public ValueTask<InodeStates> GetStatesAsync(long inode, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return ValueTask.FromResult(_backplane.GetStates(StateKey(inode)));
    }

    public string MountId => _mountId;

    public ValueTask ForgetMountAsync(string mountId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        _backplane.ForgetMount(StatePrefix, mountId);
        return ValueTask.CompletedTask;
    }

    public ValueTask SetValueAsync(string key, string value, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(value);
        _backplane.Set(ValueKey(key), value, ttl);
        return ValueTask.CompletedTask;
    }

    public ValueTask<string?> GetValueAsync(string key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return ValueTask.FromResult(_backplane.Get(ValueKey(key)));
    }

    public ValueTask<bool> DeleteValueAsync(string key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return ValueTask.FromResult(_backplane.Delete(ValueKey(key)));
    }

    public ValueTask PublishAsync(string channel, string message, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(message);
        _backplane.Publish(_prefix + channel, message);
        return ValueTask.CompletedTask;
    }

    public ValueTask<IAsyncDisposable> SubscribeAsync(string channel, Action<string> handler, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(handler);
        return ValueTask.FromResult<IAsyncDisposable>(_backplane.Subscribe(_prefix + channel, handler));
    }

    public ValueTask ResetAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        _backplane.DeleteByPrefix(_prefix);
        return ValueTask.CompletedTask;
    }

    /// <summary>Releases the leases still held; subscriptions end when their handles are disposed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _leases.ReleaseAllAsync().ConfigureAwait(false);
    }

    ValueTask<bool> ISemaphoreStore.TryTakeAsync(string name, string token, TimeSpan ttl, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_backplane.SetIfAbsent(SemaphoreKey(name), token, ttl));

    ValueTask<bool> ISemaphoreStore.ExtendAsync(string name, string token, TimeSpan ttl) =>
        ValueTask.FromResult(_backplane.ExtendIfEqual(SemaphoreKey(name), token, ttl));

    ValueTask<bool> ISemaphoreStore.ReleaseAsync(string name, string token) =>
        ValueTask.FromResult(_backplane.DeleteIfEqual(SemaphoreKey(name), token));

    private string SemaphoreKey(string name) => _prefix + "sem:" + name;

    private string StatePrefix => _prefix + "state:";

    private string StateKey(long inode) => StatePrefix + inode.ToString(CultureInfo.InvariantCulture);

    private string ValueKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _prefix + "kv:" + key;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
