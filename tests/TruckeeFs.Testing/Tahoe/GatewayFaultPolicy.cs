namespace TruckeeFs.Testing.Tahoe;

/// <summary>
/// Faults the <see cref="TahoeTestGateway"/> injects, settable at any time from any thread:
/// latency before each request is handled, failures (a 5xx answer instead of handling the
/// request) and dropped connections (the response is cut off after half its body). Counts
/// ("fail the next 3") are consumed one per request; fractions are drawn from a seeded random
/// source so a failing test can be rerun with the same faults.
/// </summary>
public sealed class GatewayFaultPolicy
{
    private readonly Lock _lock = new();
    private Random _random = new(1);
    private int _failNext;
    private int _dropNext;

    /// <summary>Latency added to every request.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>A random extra latency of up to this much is added to every request.</summary>
    public TimeSpan LatencyJitter { get; set; }

    /// <summary>
    /// Bytes per second each download body is sent at (0: as fast as possible), so that tests
    /// can see what a client does before a body has wholly arrived.
    /// </summary>
    public long DownloadBytesPerSecond { get; set; }

    /// <summary>The status injected failures answer with.</summary>
    public int FailureStatus { get; set; } = 503;

    /// <summary>Fraction (0..1) of requests that fail with <see cref="FailureStatus"/>.</summary>
    public double FailureFraction { get; set; }

    /// <summary>Fraction (0..1) of responses with a body whose connection is dropped mid-body.</summary>
    public double DropFraction { get; set; }

    /// <summary>
    /// Serve whole files whatever Range asks, as a proxy that drops the header would (and as
    /// Tahoe itself does for ranges it considers invalid).
    /// </summary>
    public bool IgnoreRanges { get; set; }

    /// <summary>Reseeds the random source behind fractions and jitter.</summary>
    public void Seed(int seed)
    {
        lock (_lock) _random = new Random(seed);
    }

    /// <summary>Makes the next <paramref name="count"/> requests fail with <see cref="FailureStatus"/>.</summary>
    public void FailNext(int count)
    {
        lock (_lock) _failNext = count;
    }

    /// <summary>Drops the connection halfway through the body of the next <paramref name="count"/> responses that have one.</summary>
    public void DropNext(int count)
    {
        lock (_lock) _dropNext = count;
    }

    /// <summary>Turns every fault off.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _failNext = 0;
            _dropNext = 0;
            Latency = TimeSpan.Zero;
            LatencyJitter = TimeSpan.Zero;
            FailureFraction = 0;
            DropFraction = 0;
            IgnoreRanges = false;
            DownloadBytesPerSecond = 0;
        }
    }

    internal TimeSpan NextLatency()
    {
        lock (_lock)
            return Latency + (LatencyJitter > TimeSpan.Zero ? LatencyJitter * _random.NextDouble() : TimeSpan.Zero);
    }

    internal bool ShouldFail()
    {
        lock (_lock)
        {
            if (_failNext > 0)
            {
                _failNext--;
                return true;
            }
            return FailureFraction > 0 && _random.NextDouble() < FailureFraction;
        }
    }

    internal bool ShouldDrop()
    {
        lock (_lock)
        {
            if (_dropNext > 0)
            {
                _dropNext--;
                return true;
            }
            return DropFraction > 0 && _random.NextDouble() < DropFraction;
        }
    }
}
