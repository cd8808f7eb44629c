using System.Diagnostics;

namespace TruckeeFs.Coordination;

/// <summary>
/// A held semaphore that renews itself every third of its TTL, so that two renewals may fail
/// (a slow or briefly unreachable server) before it runs out. It counts itself held until the
/// TTL measured from the last successful renewal's <em>request</em> has passed: the server's
/// clock started later, so the server never frees it while the lease still says it is held.
/// </summary>
internal sealed class SemaphoreLease : ISemaphoreLease
{
    private const int Held = 0;
    private const int Lost = 1;
    private const int Abandoned = 2;
    private const int Disposed = 3;

    private readonly ISemaphoreStore _store;
    private readonly Action<SemaphoreLease> _forget;
    private readonly TimeSpan _ttl;
    private readonly CancellationTokenSource _stop = new();
    private Task _renewal = Task.CompletedTask;
    private long _expiresAt;
    private int _state;

    public SemaphoreLease(ISemaphoreStore store, string name, string ownerToken, TimeSpan ttl, long requestedAt, Action<SemaphoreLease> forget)
    {
        _store = store;
        Name = name;
        OwnerToken = ownerToken;
        _ttl = ttl;
        _expiresAt = requestedAt + TtlTicks(ttl);
        _forget = forget;
    }

    public string Name { get; }

    public string OwnerToken { get; }

    public bool IsHeld => Volatile.Read(ref _state) == Held && Stopwatch.GetTimestamp() < Volatile.Read(ref _expiresAt);

    /// <summary>Starts renewing; separate from the constructor so that the lease is registered before its first renewal can fail.</summary>
    public void StartRenewing() => _renewal = RenewAsync();

    /// <summary>
    /// Stops renewing and forgets the lease without releasing it, as a holder that crashed would:
    /// the semaphore stays taken until its TTL runs out. For tests of expiry.
    /// </summary>
    public void Abandon()
    {
        if (Interlocked.CompareExchange(ref _state, Abandoned, Held) != Held) return;
        _stop.Cancel();
        _forget(this);
    }

    /// <summary>
    /// Stops renewing and releases the semaphore if this owner still holds it. If the server
    /// cannot be reached the semaphore is left to expire by its TTL rather than failing the
    /// caller's cleanup: nobody else can take it before then anyway.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        int previous;
        do
        {
            previous = Volatile.Read(ref _state);
            if (previous is Disposed or Abandoned) return;
        }
        while (Interlocked.CompareExchange(ref _state, Disposed, previous) != previous);
        await _stop.CancelAsync().ConfigureAwait(false);
        await _renewal.ConfigureAwait(false);
        _stop.Dispose();
        _forget(this);
        if (previous != Held) return;
        try
        {
            await _store.ReleaseAsync(Name, OwnerToken).ConfigureAwait(false);
        }
        catch (CoordinatorException)
        {
            // The TTL frees it; see above.
        }
    }

    private async Task RenewAsync()
    {
        var interval = TimeSpan.FromTicks(Math.Max(_ttl.Ticks / 3, TimeSpan.TicksPerMillisecond));
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var requestedAt = Stopwatch.GetTimestamp();
                bool stillOurs;
                try
                {
                    stillOurs = await _store.ExtendAsync(Name, OwnerToken, _ttl).ConfigureAwait(false);
                }
                catch (CoordinatorException)
                {
                    // Unreachable for now: keep trying while the TTL may still be running on the server.
                    if (Stopwatch.GetTimestamp() < Volatile.Read(ref _expiresAt)) continue;
                    stillOurs = false;
                }
                if (!stillOurs)
                {
                    Interlocked.CompareExchange(ref _state, Lost, Held);
                    return;
                }
                Volatile.Write(ref _expiresAt, requestedAt + TtlTicks(_ttl));
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed or abandoned.
        }
    }

    private static long TtlTicks(TimeSpan ttl) => (long)(ttl.TotalSeconds * Stopwatch.Frequency);
}
