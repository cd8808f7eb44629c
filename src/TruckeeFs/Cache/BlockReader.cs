using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Cache;

/// <summary>
/// Reads one block from the cache (or from a local store's file in place). While the block is
/// still downloading, a read waits only until its own bytes have arrived.
/// Threading: reads may run concurrently. The reader can be shared (<see cref="Share"/>), so that
/// a read may go on after its owner let go of it: each share is disposed once, and the file
/// closes with the last.
/// </summary>
public sealed class BlockReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly BlockDownload? _download;
    private int _holders = 1;

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

    /// <summary>One more holder of this reader, which must dispose it in turn; only while a holder still has it.</summary>
    public BlockReader Share()
    {
        if (Interlocked.Increment(ref _holders) <= 1) throw new ObjectDisposedException(nameof(BlockReader));
        return this;
    }

    public void Dispose()
    {
        if (Interlocked.Decrement(ref _holders) == 0) _handle.Dispose();
    }
}
