using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Cache;

/// <summary>
/// One block's changed bytes, kept as a file in the staging area until committed. The file is
/// the block: its length is the block's length, and it survives a crash of the mount.
/// </summary>
internal sealed class StagedBlock
{
    private const int CopyChunk = 1 << 20;
    private SafeFileHandle? _handle;

    private StagedBlock(string path, SafeFileHandle handle, long length)
    {
        Path = path;
        _handle = handle;
        Length = length;
    }

    public string Path { get; }

    public long Length { get; private set; }

    public static StagedBlock Create(string path) =>
        new(path, File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete), 0);

    public static StagedBlock Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        return new StagedBlock(path, handle, RandomAccess.GetLength(handle));
    }

    public void Write(ReadOnlySpan<byte> data, long offset)
    {
        RandomAccess.Write(Handle, data, offset);
        Length = Math.Max(Length, offset + data.Length);
    }

    public int Read(Span<byte> destination, long offset) =>
        offset >= Length ? 0 : FileContent.ReadFully(Handle, destination[..(int)Math.Min(destination.Length, Length - offset)], offset);

    public void WriteZeros(long offset, long count)
    {
        var zeros = new byte[Math.Min(count, CopyChunk)];
        for (long done = 0; done < count; done += zeros.Length)
            Write(zeros.AsSpan(0, (int)Math.Min(zeros.Length, count - done)), offset + done);
    }

    public void Truncate(long length)
    {
        if (length >= Length) return;
        RandomAccess.SetLength(Handle, length);
        Length = length;
    }

    public void CopyFrom(SafeFileHandle source, long length)
    {
        var buffer = new byte[Math.Min(length, CopyChunk)];
        for (long done = 0; done < length;)
        {
            var n = RandomAccess.Read(source, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), done);
            if (n == 0) break;
            RandomAccess.Write(Handle, buffer.AsSpan(0, n), done);
            done += n;
        }
        Length = length;
    }

    /// <summary>Closes the file (it is reopened if written again); with <paramref name="durable"/>, flushes it to stable storage first.</summary>
    public void Close(bool durable)
    {
        if (_handle is null) return;
        if (durable) RandomAccess.FlushToDisk(_handle);
        _handle.Dispose();
        _handle = null;
    }

    private SafeFileHandle Handle =>
        _handle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
}
