namespace TruckeeFs.Content.Tahoe;

/// <summary>How to reach a Tahoe-LAFS web-API gateway.</summary>
public sealed class TahoeOptions
{
    /// <summary>The gateway's root, such as <c>http://127.0.0.1:3456/</c>.</summary>
    public required Uri TahoeUrl { get; init; }

    /// <summary>The writable directory cap under which this filesystem keeps its tree (MIRROR mode) and backups; null until <c>truckeefs init</c> made one.</summary>
    public string? RootCap { get; init; }

    /// <summary>
    /// How long one request may take, from sending to the last body byte. Retries of transient
    /// failures stop when a few of these have passed in all.
    /// </summary>
    public TimeSpan NetTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Requests in flight to the gateway at once; more wait their turn.</summary>
    public int MaxConnections { get; init; } = 10;

    /// <summary>Sent as <c>Authorization: Bearer</c> when set (for a gateway behind an authenticating proxy). Never logged.</summary>
    public string? AuthToken { get; init; }
}
