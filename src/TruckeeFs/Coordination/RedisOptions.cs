using System.Globalization;

namespace TruckeeFs.Coordination;

/// <summary>Where and how <see cref="RedisCoordinator"/> reaches Redis.</summary>
public sealed class RedisOptions
{
    /// <summary>A host name or address; may carry a port ("host:port", "[::1]:6380"), which then wins over <see cref="Port"/>.</summary>
    public string Host { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 6379;

    /// <summary>The Redis database number.</summary>
    public int Database { get; set; }

    /// <summary>
    /// The TTL the filesystem gives its semaphores (the <c>redis_semaphore_timeout</c> key). The
    /// coordinator takes a TTL with each acquisition; this is the configured value callers pass.
    /// </summary>
    public TimeSpan SemaphoreTimeout { get; set; } = TimeSpan.FromSeconds(1800);

    /// <summary>
    /// Every key and channel of this filesystem starts with it, such as <c>truckeefs:{fsid}:</c>;
    /// <see cref="ICoordinator.ResetAsync"/> deletes exactly the keys that do. Must not be empty.
    /// </summary>
    public string KeyPrefix { get; set; } = "";

    /// <summary>How long connecting may take before the server counts as unreachable.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long any one operation may take before it fails with <see cref="CoordinatorException"/>.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The host and port to connect to, from <see cref="Host"/> (with or without a port) and <see cref="Port"/>.</summary>
    public (string Host, int Port) ResolveEndPoint()
    {
        var host = Host.Trim();
        if (host.Length == 0) throw new ArgumentException("The Redis host is empty.");
        if (host.StartsWith('['))
        {
            // "[v6]" or "[v6]:port": brackets are the only way to give a port with an IPv6 address.
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0) throw new ArgumentException($"The Redis host '{Host}' has no closing bracket.");
            var rest = host[(close + 1)..];
            if (rest.Length == 0) return (host[1..close], CheckPort(Port));
            if (rest[0] != ':') throw new ArgumentException($"The Redis host '{Host}' has text after its closing bracket.");
            return (host[1..close], ParsePort(rest[1..]));
        }
        var colon = host.IndexOf(':', StringComparison.Ordinal);
        // More than one colon without brackets is a bare IPv6 address, which cannot carry a port.
        if (colon < 0 || host.IndexOf(':', colon + 1) >= 0) return (host, CheckPort(Port));
        return (host[..colon], ParsePort(host[(colon + 1)..]));
    }

    private int ParsePort(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? CheckPort(port)
            : throw new ArgumentException($"The Redis host '{Host}' has an invalid port '{text}'.");

    private static int CheckPort(int port) =>
        port is > 0 and <= 65535 ? port : throw new ArgumentException($"Redis port {port} is out of range.");
}
