using System.Buffers;
using System.Net;
using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Content.Tahoe;

/// <summary>
/// A request body read from an open file with positioned reads, so that each attempt of an
/// upload sends the file from its start through the same handle (opened once, however often the
/// request is retried), and the handle stays the caller's.
/// </summary>
internal sealed class FileBody(SafeFileHandle file, long fileLength) : HttpContent
{
    private const int Chunk = 1 << 18;

    /// <summary>Reads up to <paramref name="destination"/>.Length bytes at <paramref name="offset"/>; fewer only at the end of the file.</summary>
    public static int ReadFully(SafeFileHandle file, Span<byte> destination, long offset)
    {
        var total = 0;
        for (int n; total < destination.Length && (n = RandomAccess.Read(file, destination[total..], offset + total)) > 0;) total += n;
        return total;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Chunk);
        try
        {
            for (long sent = 0; sent < fileLength;)
            {
                // A staged block is in the page cache: reading it in place is cheaper than a hop through the thread pool.
                var n = ReadFully(file, buffer.AsSpan(0, (int)Math.Min(Chunk, fileLength - sent)), sent);
                if (n == 0) throw new IOException($"the file being uploaded ended at {sent} of {fileLength} bytes");
                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                sent += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = fileLength;
        return true;
    }
}
