using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace TruckeeFs.Coordination;

/// <summary>
/// The semaphore half of <see cref="ICoordinator"/> over any <see cref="ISemaphoreStore"/>:
/// owner tokens, waiting, and the leases a coordinator must release when it is disposed.
/// </summary>
internal sealed class SemaphoreLeases(ISemaphoreStore store)
{
    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(200);
    private readonly ConcurrentDictionary<SemaphoreLease, byte> _held = new();

    public async ValueTask<ISemaphoreLease?> TryAcquireAsync(string name, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(ttl, TimeSpan.FromMilliseconds(1));
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var requestedAt = Stopwatch.GetTimestamp();
        if (!await store.TryTakeAsync(name, token, ttl, cancellationToken).ConfigureAwait(false)) return null;
        var lease = new SemaphoreLease(store, name, token, ttl, requestedAt, l => _held.TryRemove(l, out _));
        _held.TryAdd(lease, 0);
        lease.StartRenewing();
        return lease;
    }

    /// <summary>
    /// Polls, backing off from a few milliseconds to <see cref="LongestPoll"/>: semaphores guard
    /// uploads and similar work that takes far longer than that, and polling needs nothing from
    /// the server that a holder that died could fail to send.
    /// </summary>
    public async ValueTask<ISemaphoreLease> AcquireAsync(string name, TimeSpan ttl, TimeSpan wait, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(wait, TimeSpan.Zero);
        var clock = Stopwatch.StartNew();
        var poll = FirstPoll;
        while (true)
        {
            var lease = await TryAcquireAsync(name, ttl, cancellationToken).ConfigureAwait(false);
            if (lease is not null) return lease;
            var left = wait - clock.Elapsed;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"Semaphore '{name}' was still held by another owner after {wait.TotalMilliseconds} ms."));
            await Task.Delay(poll < left ? poll : left, cancellationToken).ConfigureAwait(false);
            poll = poll * 2 < LongestPoll ? poll * 2 : LongestPoll;
        }
    }

    /// <summary>Releases every lease still held, as a clean unmount must.</summary>
    public async ValueTask ReleaseAllAsync()
    {
        foreach (var lease in _held.Keys) await lease.DisposeAsync().ConfigureAwait(false);
    }
}
