namespace TruckeeFs.Content.Tahoe;

/// <summary>
/// File contents in a Tahoe-LAFS grid, reached through a web-API gateway. Every object is an
/// immutable file: CHK, or a literal cap for 55 bytes or less, which carries the bytes inside the
/// cap and is made and read here without any request. Immutable caps never change meaning, so
/// whatever is read may be cached forever; objects cannot be deleted (they expire with their
/// leases), so <see cref="DeleteAsync"/> does nothing.
/// </summary>
public sealed class TahoeContentStore : IContentStore
{
    private readonly TahoeClient _client;

    /// <summary>Creates a store on the gateway in <paramref name="options"/>.</summary>
    public TahoeContentStore(TahoeOptions options)
    {
        _client = new TahoeClient(options);
    }

    /// <summary>The web-API client, for the directory operations of MIRROR mode and <c>truckeefs init</c>.</summary>
    public TahoeClient Client => _client;

    /// <inheritdoc />
    public string Description => $"tahoe {_client.GatewayUrl}";

    public bool IsLocal => false;

    /// <inheritdoc />
    public async ValueTask<string> PutAsync(string path, CancellationToken cancellationToken = default) =>
        await _client.UploadImmutableAsync(path, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // Only immutable file caps name contents; anything else was not stored by this store.
        if (!TahoeCaps.TryDecodeLiteral(cap, out _) && !TahoeCaps.TryGetChkSize(cap, out _))
            throw new ContentNotFoundException(cap);
        return await _client.ReadAsync(cap, offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<long> StreamAsync(string cap, long offset, long length, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink,
        CancellationToken cancellationToken = default)
    {
        if (!TahoeCaps.TryDecodeLiteral(cap, out _) && !TahoeCaps.TryGetChkSize(cap, out _))
            throw new ContentNotFoundException(cap);
        return await _client.StreamAsync(cap, offset, length, sink, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DeleteAsync(string cap, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public string? LocalPath(string cap) => null;

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
