using System.Globalization;
using System.Text;

namespace TruckeeFs.Vfs;

/// <summary>
/// The kernel's caches of this mount (attributes, names, page cache, directory listings), which
/// changes made by other mounts make stale. Calls may block briefly and must not be made on a
/// thread that answers FUSE requests, except to drop an inode's attributes alone.
/// </summary>
public interface IKernelCache
{
    /// <summary>
    /// Drops the inode's cached attributes, and with <paramref name="data"/> its cached contents
    /// or listing. Without <paramref name="data"/> the kernel touches no page and takes no lock a
    /// request holds, so an open may call it before it answers.
    /// </summary>
    void InvalidateInode(long inode, bool data);

    /// <summary>Drops the cached name <paramref name="name"/> in <paramref name="parent"/>.</summary>
    void InvalidateEntry(long parent, byte[] name);
}

/// <summary>
/// One cache a change made stale: an inode's attributes, its data too (with the content
/// <see cref="Version"/> a commit made, when it is one), or a name.
/// </summary>
internal readonly record struct Invalidation(char Kind, long Inode, byte[]? Name = null, long Version = 0)
{
    public static Invalidation Attributes(long inode) => new('a', inode);

    public static Invalidation Data(long inode) => new('d', inode);

    public static Invalidation Contents(long inode, long version) => new('d', inode, Version: version);

    public static Invalidation Entry(long parent, ReadOnlySpan<byte> name) => new('e', parent, name.ToArray());
}

public sealed partial class Vfs
{
    // Every mount hears every change; its own are skipped by origin. Each message names what
    // one operation made stale, after the operation committed.
    private const string InvalidationChannel = "invalidate";

    // A lookup on another mount that read the metadata just before a change committed may
    // answer the kernel just after the invalidation arrived, caching the old state for the whole
    // timeout; invalidating again a moment later closes that window.
    private static readonly TimeSpan RepeatInvalidation = TimeSpan.FromMilliseconds(200);

    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly List<IAsyncDisposable> _subscriptions = [];
    private IKernelCache? _kernel;

    /// <summary>Gives the engine the kernel caches to invalidate when other mounts change things.</summary>
    public void AttachKernel(IKernelCache kernel) => _kernel = kernel;

    private async Task SubscribeAsync()
    {
        _subscriptions.Add(await _coordinator.SubscribeAsync(InvalidationChannel, OnInvalidation).ConfigureAwait(false));
        _subscriptions.Add(await _coordinator.SubscribeAsync(LockChannel, OnLockReleased).ConfigureAwait(false));
    }

    private async Task UnsubscribeAsync()
    {
        foreach (var subscription in _subscriptions) await subscription.DisposeAsync().ConfigureAwait(false);
        _subscriptions.Clear();
    }

    /// <summary>
    /// Drops what a committed change made stale from this mount's metadata cache, and tells the
    /// other mounts (without waiting), if any can share the database.
    /// </summary>
    private void Publish(params Invalidation[] changes)
    {
        foreach (var change in changes) _cache.Invalidate(change);
        if (SessionId == 0 || !_meta.IsShared) return;
        var message = new StringBuilder(_origin);
        foreach (var change in changes)
        {
            message.Append('|').Append(change.Kind).Append(change.Inode.ToString(CultureInfo.InvariantCulture));
            if (change.Name is { } name) message.Append(':').Append(Convert.ToBase64String(name));
            if (change.Version != 0) message.Append('@').Append(change.Version.ToString(CultureInfo.InvariantCulture));
        }
        _ = PublishAsync(InvalidationChannel, message.ToString());
    }

    private async Task PublishAsync(string channel, string message)
    {
        try
        {
            await _coordinator.PublishAsync(channel, message).ConfigureAwait(false);
        }
        catch (Coordination.CoordinatorException e)
        {
            // The others see the change when their kernel cache times out.
            SessionLog.PublishFailed(_log, channel, e);
        }
    }

    private void OnInvalidation(string message)
    {
        var parts = message.Split('|');
        if (parts[0] == _origin) return;
        var changes = parts.Skip(1).Select(Parse).ToArray();
        Apply(changes);
        _ = Task.Delay(RepeatInvalidation).ContinueWith(_ => Apply(changes), TaskScheduler.Default);
    }

    /// <summary>
    /// Drops another mount's changes from this mount's caches: its own first, so that the kernel
    /// asking again gets the new state. Contents this mount already serves (an open here found
    /// them and dropped the kernel's attributes itself) are left alone: the kernel throws away
    /// an attribute answer overtaken by an invalidation, and a read asking for the new size
    /// just then would stop at the old one.
    /// </summary>
    private void Apply(Invalidation[] changes)
    {
        foreach (var change in changes)
        {
            _cache.Invalidate(change);
            if (_kernel is not { } kernel || Serves(change)) continue;
            if (change.Kind == 'e') kernel.InvalidateEntry(change.Inode, change.Name!);
            else kernel.InvalidateInode(change.Inode, data: change.Kind == 'd');
        }
    }

    private bool Serves(Invalidation change)
    {
        if (change.Version == 0) return false;
        lock (_liveLock) return _live.TryGetValue(change.Inode, out var live) && live.ServedVersion >= change.Version;
    }

    /// <summary>An item of a message: kind, inode, then ":" and a base64 name or "@" and a content version.</summary>
    private static Invalidation Parse(string item)
    {
        var colon = item.IndexOf(':');
        if (colon >= 0) return new Invalidation(item[0], ParseLong(item.AsSpan(1, colon - 1)), Convert.FromBase64String(item[(colon + 1)..]));
        var at = item.IndexOf('@');
        return at < 0
            ? new Invalidation(item[0], ParseLong(item.AsSpan(1)))
            : new Invalidation(item[0], ParseLong(item.AsSpan(1, at - 1)), Version: ParseLong(item.AsSpan(at + 1)));
    }

    private static long ParseLong(ReadOnlySpan<char> digits) => long.Parse(digits, CultureInfo.InvariantCulture);
}
