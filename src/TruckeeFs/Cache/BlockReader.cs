using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Cache;

/// <summary>
/// Reads one block from the cache (or from a local store's file in place). While the block is
/// still downloading, a read waits only until its own bytes have arrived.
/// Threading: reads may run concurrently; dispose once none is in flight.
/// </summary>
public sealed class BlockReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly BlockDownload? _download;

    internal BlockReader(SafeFileHandle handle, BlockDownload? download)
    {
        _handle = handle;
        _download = download;
    }

    /// <summary>
    /// Reads up to <paramref name="destination"/>.Length bytes at <paramref name="offset"/>;
    /// fewer only at the block's end. Throws <see cref="Content.ContentStoreException"/> if the
    /// block's download failed.
    /// </summary>
    public async ValueTask<int> ReadAsync(long offset, Memory<byte> destination)
    {
        if (_download is not null) await _download.WaitAsync(offset, offset + destination.Length).ConfigureAwait(false);
        return FileContent.ReadFully(_handle, destination.Span, offset);
    }

    /// <summary>The block's file, once its first <paramref name="length"/> bytes are there.</summary>
    public async ValueTask<SafeFileHandle> HandleAsync(long length)
    {
        if (_download is not null) await _download.WaitAsync(0, length).ConfigureAwait(false);
        return _handle;
    }

    public void Dispose() => _handle.Dispose();
}
