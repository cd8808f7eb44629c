namespace TruckeeFs.Fuse;

/// <summary>
/// Builds the answer to one readdir or readdirplus: entries are packed in the kernel's format
/// until the kernel's <c>size</c> is reached, then the answer is sent with
/// <see cref="FuseRequest.ReplyBuffer"/>(<see cref="Written"/>). The buffer is managed memory,
/// pinned only while libfuse packs an entry; <see cref="Reset"/> reuses it for the next request,
/// so keeping one per open directory or per worker avoids allocating per call. Not thread-safe.
/// </summary>
public sealed unsafe class FuseDirectoryBuffer
{
    private byte[] _buffer = [];
    private int _limit;
    private int _length;

    /// <summary>Creates a buffer for an answer of at most <paramref name="size"/> bytes.</summary>
    public FuseDirectoryBuffer(ulong size) => Reset(size);

    /// <summary>The packed entries.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary>Empties the buffer for an answer of at most <paramref name="size"/> bytes.</summary>
    public void Reset(ulong size)
    {
        _limit = (int)Math.Min(size, (ulong)Array.MaxLength);
        if (_buffer.Length < _limit)
        {
            _buffer = new byte[_limit];
        }

        _length = 0;
    }

    /// <summary>
    /// Adds a readdir entry; only <see cref="FuseStat.Inode"/> and the type bits of
    /// <see cref="FuseStat.Mode"/> are used. Returns false, adding nothing, when it does not fit.
    /// </summary>
    /// <param name="request">The readdir request being answered.</param>
    /// <param name="name">The entry's name, without NUL.</param>
    /// <param name="attr">The entry's inode and type.</param>
    /// <param name="nextOffset">The offset the kernel passes to continue after this entry.</param>
    public bool TryAdd(FuseRequest request, ReadOnlySpan<byte> name, in FuseStat attr, long nextOffset)
    {
        var z = Native.NulTerminate(name, stackalloc byte[Native.NameScratch], out var rented);
        try
        {
            fixed (byte* buffer = _buffer)
            fixed (byte* cName = z)
            fixed (FuseStat* st = &attr)
            {
                var free = (nuint)(_limit - _length);
                var size = Native.fuse_add_direntry(request.Handle, buffer + _length, free, cName, st, nextOffset);
                return Advance(size, free);
            }
        }
        finally
        {
            Native.Return(rented);
        }
    }

    /// <summary>
    /// Adds a readdirplus entry. Returns false, adding nothing, when it does not fit. The kernel
    /// counts a lookup for every entry sent with a nonzero <see cref="FuseEntryParam.Inode"/>
    /// (except "." and ".."), exactly as if lookup had answered it.
    /// </summary>
    /// <param name="request">The readdirplus request being answered.</param>
    /// <param name="name">The entry's name, without NUL.</param>
    /// <param name="entry">The entry, as lookup would answer it.</param>
    /// <param name="nextOffset">The offset the kernel passes to continue after this entry.</param>
    public bool TryAddPlus(FuseRequest request, ReadOnlySpan<byte> name, in FuseEntryParam entry, long nextOffset)
    {
        var z = Native.NulTerminate(name, stackalloc byte[Native.NameScratch], out var rented);
        try
        {
            fixed (byte* buffer = _buffer)
            fixed (byte* cName = z)
            fixed (FuseEntryParam* e = &entry)
            {
                var free = (nuint)(_limit - _length);
                var size = Native.fuse_add_direntry_plus(request.Handle, buffer + _length, free, cName, e, nextOffset);
                return Advance(size, free);
            }
        }
        finally
        {
            Native.Return(rented);
        }
    }

    // libfuse returns the entry's size and writes nothing when that exceeds the free space.
    private bool Advance(nuint size, nuint free)
    {
        if (size > free)
        {
            return false;
        }

        _length += (int)size;
        return true;
    }
}
