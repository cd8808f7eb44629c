using TruckeeFs.Config;

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
    /// <exception cref="ArgumentException">The host is empty or its port is not in 1..65535.</exception>
    public (string Host, int Port) ResolveEndPoint()
    {
        try
        {
            var (host, port) = HostAndPort.Parse(Host, Port);
            return (host, port);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"The Redis host '{Host}' is not usable: {e.Message}.", e);
        }
    }
}
