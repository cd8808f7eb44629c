using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Cache;

/// <summary>
/// One block's changed bytes, kept as a file in the staging area until committed. The file is
/// the block: its length is the block's length, and it survives a crash of the mount.
///
/// A block is writable until it is frozen: when a close seals the version it belongs to, or
/// earlier, when a sequential writer has filled it and moved on (it is then uploaded at once,
/// see <see cref="EarlyUpload"/>). From then on its file never changes (a later write to the
/// block stages a new copy), so it can be uploaded while the file is written again, named in
/// the commit journal, and hard-linked by a local content store. The file name of a block no
/// seal has frozen ends in <see cref="WritableSuffix"/>, dropped by the seal, so that after a
/// crash the staging folder itself tells blocks written since the last close from blocks of
/// sealed versions. Not thread-safe: its <see cref="FileContent"/> serialises access, except
/// that a frozen block may be read (uploaded, copied) from any thread.
/// </summary>
internal sealed class StagedBlock
{
    /// <summary>Ends the file name of a block not frozen yet.</summary>
    public const string WritableSuffix = ".w";
    private const int CopyChunk = 1 << 20;
    // A seal renames the file while an early upload may be opening it from another thread.
    private readonly Lock _nameLock = new();
    private SafeFileHandle? _handle;
    private bool _released;

    private StagedBlock(long index, string path, SafeFileHandle? handle, long length, bool frozen)
    {
        Index = index;
        Path = path;
        _handle = handle;
        Length = length;
        Frozen = frozen;
    }

    public long Index { get; }

    public string Path { get; private set; }

    public long Length { get; private set; }

    /// <summary>Finished or sealed into a version: the file no longer changes.</summary>
    public bool Frozen { get; private set; }

    /// <summary>The cap of the stored object, once uploaded (only frozen blocks are uploaded).</summary>
    public string? Cap { get; set; }

    /// <summary>The upload due since a sequential writer finished the block, before any seal; null if none is.</summary>
    public EarlyUpload? EarlyUpload { get; private set; }

    /// <summary>A new, empty, writable block; <paramref name="frozenPath"/> is the name it takes when frozen.</summary>
    public static StagedBlock Create(long index, string frozenPath)
    {
        var path = frozenPath + WritableSuffix;
        // Names are never reused (CreateNew); FileMode.Create would truncate, which on ext4 makes
        // the close of the file write it out at once (its guard for files rewritten in place).
        return new(index, path, File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete), 0, frozen: false);
    }

    /// <summary>A block a previous mount left (after a crash), frozen now if it was not.</summary>
    public static StagedBlock OpenFrozen(long index, string path)
    {
        if (path.EndsWith(WritableSuffix, StringComparison.Ordinal))
        {
            var frozen = path[..^WritableSuffix.Length];
            File.Move(path, frozen, overwrite: true);
            path = frozen;
        }
        return new(index, path, null, new FileInfo(path).Length, frozen: true);
    }

    public void Write(ReadOnlySpan<byte> data, long offset)
    {
        RandomAccess.Write(WritableHandle, data, offset);
        Length = Math.Max(Length, offset + data.Length);
    }

    public int Read(Span<byte> destination, long offset)
    {
        if (offset >= Length) return 0;
        // A frozen block keeps a read-only handle: the writable one is never reopened.
        _handle ??= Frozen ? OpenRead() : WritableHandle;
        return FileContent.ReadFully(_handle, destination[..(int)Math.Min(destination.Length, Length - offset)], offset);
    }

    public void WriteZeros(long offset, long count)
    {
        var zeros = new byte[Math.Min(count, CopyChunk)];
        for (long done = 0; done < count; done += zeros.Length)
            Write(zeros.AsSpan(0, (int)Math.Min(zeros.Length, count - done)), offset + done);
    }

    public void Truncate(long length)
    {
        if (length >= Length) return;
        RandomAccess.SetLength(WritableHandle, length);
        Length = length;
    }

    /// <summary>
    /// Fills the block with the first <paramref name="length"/> bytes of <paramref name="source"/>
    /// (the version a partial write changes). In the kernel where it can: the bytes do not pass
    /// through this process, and a filesystem that shares extents (XFS, btrfs) clones them, so
    /// that an fsync after a small write stores the changed pages, not the whole block again.
    /// </summary>
    public void CopyFrom(SafeFileHandle source, long length)
    {
        if (Posix.CopyFileRange(source, WritableHandle, length, out var copied) != 0)
        {
            // Another filesystem, or one the kernel cannot copy within: through a buffer.
            var buffer = new byte[Math.Min(length - copied, CopyChunk)];
            for (var done = copied; done < length;)
            {
                var n = RandomAccess.Read(source, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), done);
                if (n == 0) break;
                RandomAccess.Write(WritableHandle, buffer.AsSpan(0, n), done);
                done += n;
            }
        }
        Length = length;
    }

    /// <summary>Opens the file for reading only (copying a frozen block, which must not be written).</summary>
    public SafeFileHandle OpenRead() => File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);

    /// <summary>
    /// Freezes a block no seal has frozen yet, keeping its writable name (its version is not
    /// sealed), for the <paramref name="upload"/> due (see <see cref="StartUpload"/>).
    /// </summary>
    public void FreezeForUpload(EarlyUpload upload)
    {
        if (Frozen) throw new InvalidOperationException($"staged block {Path} is frozen");
        _handle?.Dispose();
        _handle = null;
        Frozen = true;
        EarlyUpload = upload;
    }

    /// <summary>
    /// Calls <paramref name="store"/> with the block's path, which no seal renames before it
    /// returns (a store opens the file before it does); null, without a call, once the block
    /// has been let go of.
    /// </summary>
    public Task<string>? StartUpload(Func<string, Task<string>> store)
    {
        lock (_nameLock) return _released ? null : store(Path);
    }

    /// <summary>
    /// Seals the block: closes the file for good and drops the writable suffix of its name; with
    /// <paramref name="durable"/>, flushes it to stable storage first. Freezing a sealed block
    /// with durable flushes it again (cheap when clean).
    /// </summary>
    public void Freeze(bool durable)
    {
        if (durable) Flush();
        _handle?.Dispose();
        _handle = null;
        Frozen = true;
        if (!Path.EndsWith(WritableSuffix, StringComparison.Ordinal)) return;
        var frozen = Path[..^WritableSuffix.Length];
        lock (_nameLock)
        {
            var status = Posix.Rename(Path, frozen);
            if (status != 0) throw new IOException($"cannot rename {Path} to {frozen} (errno {status})");
            Path = frozen;
        }
    }

    /// <summary>Makes the file's bytes survive a power loss (fsync).</summary>
    public void Flush()
    {
        if (_handle is not null)
        {
            RandomAccess.FlushToDisk(_handle);
            return;
        }
        // fsync(2) works on a read-only descriptor too.
        using var handle = OpenRead();
        RandomAccess.FlushToDisk(handle);
    }

    /// <summary>
    /// Closes the file (a writable block reopens it when written again). Called once the block
    /// is let go of, it also cancels an early upload not started yet and ends its hold on the
    /// collector.
    /// </summary>
    public void Close()
    {
        _handle?.Dispose();
        _handle = null;
        if (EarlyUpload is null) return;
        lock (_nameLock) _released = true;
        EarlyUpload.Release();
    }

    public void Delete()
    {
        Close();
        File.Delete(Path);
    }

    private SafeFileHandle WritableHandle
    {
        get
        {
            if (Frozen) throw new InvalidOperationException($"staged block {Path} is frozen");
            return _handle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        }
    }
}
