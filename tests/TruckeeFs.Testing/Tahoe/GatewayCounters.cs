using System.Collections.Concurrent;

namespace TruckeeFs.Testing.Tahoe;

/// <summary>
/// What the <see cref="TahoeTestGateway"/> has served, so tests can count uploads, downloads
/// and concurrency. All members are safe to read while requests are in flight.
/// </summary>
public sealed class GatewayCounters
{
    private readonly ConcurrentDictionary<string, long> _byMethod = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<GatewayRequestKind, long> _byKind = new();
    private long _requests;
    private long _bytesUploaded;
    private long _bytesDownloaded;
    private long _inFlight;
    private long _maxInFlight;
    private long _failuresInjected;
    private long _responsesDropped;

    /// <summary>Requests received, including failed and dropped ones.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>File bodies stored (immutable uploads and mutable writes).</summary>
    public long Uploads => ByKind(GatewayRequestKind.Upload);

    /// <summary>File bodies served (whole or ranged GETs that returned data).</summary>
    public long Downloads => ByKind(GatewayRequestKind.Download);

    /// <summary>Bytes of file data received in uploads.</summary>
    public long BytesUploaded => Interlocked.Read(ref _bytesUploaded);

    /// <summary>Bytes of file data sent in downloads (what was written before any drop).</summary>
    public long BytesDownloaded => Interlocked.Read(ref _bytesDownloaded);

    /// <summary>Requests received and not yet answered (writing a response body does not count).</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>The most requests ever handled at once.</summary>
    public long MaxInFlight => Interlocked.Read(ref _maxInFlight);

    /// <summary>Requests answered with an injected failure.</summary>
    public long FailuresInjected => Interlocked.Read(ref _failuresInjected);

    /// <summary>Responses whose connection was dropped on purpose.</summary>
    public long ResponsesDropped => Interlocked.Read(ref _responsesDropped);

    /// <summary>Requests received with HTTP method <paramref name="method"/>.</summary>
    public long ByMethod(string method) => _byMethod.TryGetValue(method, out var n) ? n : 0;

    /// <summary>Requests the gateway handled as <paramref name="kind"/>.</summary>
    public long ByKind(GatewayRequestKind kind) => _byKind.TryGetValue(kind, out var n) ? n : 0;

    /// <summary>Forgets the high-water mark of <see cref="MaxInFlight"/>.</summary>
    public void ResetMaxInFlight() => Interlocked.Exchange(ref _maxInFlight, Interlocked.Read(ref _inFlight));

    internal void Started(string method)
    {
        Interlocked.Increment(ref _requests);
        _byMethod.AddOrUpdate(method, 1, (_, n) => n + 1);
        var now = Interlocked.Increment(ref _inFlight);
        long max;
        while (now > (max = Interlocked.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
        {
        }
    }

    internal void Finished() => Interlocked.Decrement(ref _inFlight);

    internal void Handled(GatewayRequestKind kind) => _byKind.AddOrUpdate(kind, 1, (_, n) => n + 1);

    internal void Uploaded(long bytes) => Interlocked.Add(ref _bytesUploaded, bytes);

    internal void Downloaded(long bytes) => Interlocked.Add(ref _bytesDownloaded, bytes);

    internal void FailureInjected() => Interlocked.Increment(ref _failuresInjected);

    internal void ResponseDropped() => Interlocked.Increment(ref _responsesDropped);
}

/// <summary>What a request did, for <see cref="GatewayCounters.ByKind"/>.</summary>
public enum GatewayRequestKind
{
    /// <summary>Stored a file body.</summary>
    Upload,
    /// <summary>Served file data.</summary>
    Download,
    /// <summary>Created a directory.</summary>
    Mkdir,
    /// <summary>Answered a <c>t=json</c>, <c>t=uri</c> or similar query.</summary>
    Info,
    /// <summary>Changed a directory's links (link, unlink, rename, relink, set_children).</summary>
    DirectoryChange,
    /// <summary>Anything else: status pages, checks, errors.</summary>
    Other,
}
