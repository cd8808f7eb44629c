using TruckeeFs.Cache;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    private const int FallocKeepSize = 0x01;
    private const int FallocPunchHole = 0x02;
    private const int FallocZeroRange = 0x10;
    private const int CopyChunk = 1 << 20;

    /// <summary>Creates and opens a regular file (O_CREAT; the kernel turns O_EXCL on an existing name into EEXIST through lookup, and so does the metadata).</summary>
    public int Create(RequestContext context, long parent, ReadOnlySpan<byte> name, long mode, int flags, out Inode entry, out ulong handle)
    {
        handle = 0;
        var status = CreateNode(parent, name, new NewNode(FileModes.Regular | (mode & FileModes.PermissionMask), context.Uid, context.Gid), out entry);
        // Another mount created the name since the kernel looked it up here: without O_EXCL,
        // open(2) opens what is there.
        if (status == Errno.EEXIST && (flags & OpenFlags.Exclusive) == 0) return OpenExisting(context, parent, name, flags, out entry, out handle);
        if (status != 0) return status;
        status = RecordOpen(entry.Id);
        if (status != 0) return status;
        handle = OpenHandle(entry, flags, isNew: true);
        return 0;
    }

    /// <summary>
    /// Opens a regular file. O_TRUNC empties it whatever the access mode, as Linux does (the
    /// kernel has checked write permission for it).
    /// </summary>
    public async ValueTask<(int Status, ulong Handle)> OpenAsync(long inode, int flags)
    {
        var row = _meta.GetInode(inode);
        if (row is null) return (Errno.ENOENT, 0);
        if (row.IsDirectory) return (Errno.EISDIR, 0);
        if (!row.IsRegular) return (Errno.ENXIO, 0);
        var recorded = RecordOpen(inode);
        if (recorded != 0) return (recorded, 0);
        var handle = OpenHandle(row, flags, isNew: false);
        if ((flags & OpenFlags.Truncate) != 0)
        {
            var content = _handles[handle].Content;
            await content.TruncateAsync(0, Now()).ConfigureAwait(false);
        }
        return (0, handle);
    }

    public async ValueTask<(int Status, int Count)> ReadAsync(ulong handle, long offset, Memory<byte> buffer)
    {
        if (!_handles.TryGetValue(handle, out var file)) return (Errno.EBADF, 0);
        if (offset < 0) return (Errno.EINVAL, 0);
        return (0, await file.Content.ReadAsync(offset, buffer).ConfigureAwait(false));
    }

    public async ValueTask<int> WriteAsync(ulong handle, long offset, ReadOnlyMemory<byte> data)
    {
        if (!_handles.TryGetValue(handle, out var file)) return Errno.EBADF;
        if (offset < 0) return Errno.EINVAL;
        // O_APPEND writes go to the end as this mount knows it, whatever offset the kernel computed.
        if ((file.Flags & OpenFlags.Append) != 0) offset = file.Content.Size;
        await file.Content.WriteAsync(offset, data, Now()).ConfigureAwait(false);
        return 0;
    }

    /// <summary>close(2) of one descriptor: commits the file's changes so the next open anywhere sees them.</summary>
    public async ValueTask<int> FlushAsync(ulong handle)
    {
        if (!_handles.TryGetValue(handle, out var file)) return Errno.EBADF;
        return await CommitAsync(file.Content, durable: false).ConfigureAwait(false);
    }

    /// <summary>fsync(2): returns once data and metadata are on stable storage.</summary>
    public async ValueTask<int> FsyncAsync(ulong handle)
    {
        if (!_handles.TryGetValue(handle, out var file)) return Errno.EBADF;
        var status = await CommitAsync(file.Content, durable: true).ConfigureAwait(false);
        if (status == 0) _meta.Sync();
        return status;
    }

    /// <summary>The last close of an open file description.</summary>
    public async ValueTask ReleaseAsync(ulong handle)
    {
        if (!_handles.TryRemove(handle, out var file)) return;
        try
        {
            await CommitAsync(file.Content, durable: false).ConfigureAwait(false);
        }
        finally
        {
            RecordClose(file.Inode);
            ReleaseContent(file.Inode);
        }
    }

    /// <summary>setattr: a new <paramref name="size"/> (truncate) and/or the attributes <paramref name="change"/> names.</summary>
    public async ValueTask<(int Status, Inode? Attributes)> SetAttributesAsync(long inode, AttributeChange change, long? size)
    {
        var row = _meta.GetInode(inode);
        if (row is null) return (Errno.ENOENT, null);
        if (size is { } newSize)
        {
            if (row.IsDirectory) return (Errno.EISDIR, null);
            if (!row.IsRegular) return (Errno.EINVAL, null);
            if (newSize < 0) return (Errno.EINVAL, null);
            var content = AcquireContent(row);
            try
            {
                await content.TruncateAsync(newSize, Now()).ConfigureAwait(false);
                var status = await CommitAsync(content, durable: false).ConfigureAwait(false);
                if (status != 0) return (status, null);
            }
            finally
            {
                ReleaseContent(inode);
            }
        }
        else if (change.Mtime is not null && LiveContent(inode) is { IsDirty: true } dirty)
        {
            // An explicit mtime must not be overwritten by the commit of earlier writes.
            var status = await CommitAsync(dirty, durable: false).ConfigureAwait(false);
            if (status != 0) return (status, null);
        }
        if (change.Mode is not null || change.Uid is not null || change.Gid is not null || change.Atime is not null || change.Mtime is not null)
        {
            var status = _meta.SetAttributes(inode, change, Now(), out var updated);
            if (status == 0) Publish(Invalidation.Attributes(inode));
            return (status, status == 0 ? Overlay(updated) : null);
        }
        row = _meta.GetInode(inode);
        return row is null ? (Errno.ENOENT, null) : (0, Overlay(row));
    }

    /// <summary>fallocate(2): allocation (a no-op beyond growing the size: blocks are made on write), punching holes and zeroing ranges.</summary>
    public async ValueTask<int> FallocateAsync(ulong handle, int mode, long offset, long length)
    {
        if (!_handles.TryGetValue(handle, out var file)) return Errno.EBADF;
        if (offset < 0 || length <= 0) return Errno.EINVAL;
        var content = file.Content;
        var keepSize = (mode & FallocKeepSize) != 0;
        switch (mode & ~FallocKeepSize)
        {
            case 0:
                break;
            case FallocPunchHole when keepSize:
            case FallocZeroRange:
                await content.ZeroAsync(offset, length, Now()).ConfigureAwait(false);
                break;
            default:
                return Errno.EOPNOTSUPP;
        }
        if (!keepSize && offset + length > content.Size)
            await content.TruncateAsync(offset + length, Now()).ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// copy_file_range(2). Where source and destination offsets are in the same place within a
    /// block, whole blocks are shared by reference (no bytes copied or stored); the rest is copied.
    /// </summary>
    public async ValueTask<(int Status, long Count)> CopyFileRangeAsync(ulong handleIn, long offsetIn, ulong handleOut, long offsetOut, long length, int flags)
    {
        if (!_handles.TryGetValue(handleIn, out var source) || !_handles.TryGetValue(handleOut, out var target)) return (Errno.EBADF, 0);
        if (flags != 0 || offsetIn < 0 || offsetOut < 0) return (Errno.EINVAL, 0);
        if (source.Inode == target.Inode && offsetIn < offsetOut + length && offsetOut < offsetIn + length) return (Errno.EINVAL, 0);

        var status = await CommitAsync(source.Content, durable: false).ConfigureAwait(false);
        if (status != 0) return (status, 0);
        var count = Math.Min(length, source.Content.Size - offsetIn);
        if (count <= 0) return (0, 0);

        var blockSize = _options.BlockSize;
        long done = 0;
        if (offsetIn % blockSize == offsetOut % blockSize)
        {
            var head = Math.Min(count, (blockSize - offsetIn % blockSize) % blockSize);
            await CopyBytesAsync(source.Content, offsetIn, target.Content, offsetOut, head).ConfigureAwait(false);
            done = head;
            var whole = (count - done) / blockSize * blockSize;
            if (whole > 0)
            {
                var blocks = await source.Content.WholeBlocksAsync(offsetIn + done, whole).ConfigureAwait(false);
                await target.Content.ShareBlocksAsync((offsetOut + done) / blockSize, blocks, Now()).ConfigureAwait(false);
                done += whole;
            }
        }
        await CopyBytesAsync(source.Content, offsetIn + done, target.Content, offsetOut + done, count - done).ConfigureAwait(false);
        // Commit now: shared objects must be referenced before the source could drop them.
        status = await CommitAsync(target.Content, durable: false).ConfigureAwait(false);
        return (status, status == 0 ? count : 0);
    }

    private async ValueTask CopyBytesAsync(FileContent source, long offsetIn, FileContent target, long offsetOut, long count)
    {
        if (count <= 0) return;
        var buffer = new byte[Math.Min(count, CopyChunk)];
        for (long done = 0; done < count;)
        {
            var n = await source.ReadAsync(offsetIn + done, buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - done))).ConfigureAwait(false);
            if (n == 0) break;
            await target.WriteAsync(offsetOut + done, buffer.AsMemory(0, n), Now()).ConfigureAwait(false);
            done += n;
        }
    }

    private async ValueTask<int> CommitAsync(FileContent content, bool durable)
    {
        try
        {
            var changed = content.IsDirty;
            var status = await content.CommitAsync(durable).ConfigureAwait(false);
            if (status == 0 && changed) ContentCommitted(content.Inode);
            await _content.Collector.CollectAsync().ConfigureAwait(false);
            return status;
        }
        catch (Exception e) when (e is Content.ContentStoreException or IOException)
        {
            // The changes stay staged on disk; the next commit of this file retries them.
            Log.CommitFailed(_log, e);
            return Errno.EIO;
        }
    }

    private ulong OpenHandle(Inode inode, int flags, bool isNew)
    {
        var handle = (ulong)Interlocked.Increment(ref _nextHandle);
        _handles[handle] = new FileHandle(inode.Id, flags, AcquireContent(inode, isNew));
        return handle;
    }

    /// <summary>The inode's shared content state, counted as one more open.</summary>
    /// <param name="isNew">The file was just created: it has no blocks to look up.</param>
    private FileContent AcquireContent(Inode inode, bool isNew = false)
    {
        lock (_liveLock)
        {
            if (!_live.TryGetValue(inode.Id, out var live)) _live[inode.Id] = live = new LiveInode();
            live.Opens++;
            // Loading the block map under the lock keeps one content per inode; it is one indexed read.
            return live.Content ??= new FileContent(inode.Id, inode, isNew ? [] : _meta.GetBlocks(inode.Id), _content);
        }
    }

    private void ReleaseContent(long inode)
    {
        FileContent? closed = null;
        bool unused;
        lock (_liveLock)
        {
            if (!_live.TryGetValue(inode, out var live)) return;
            if (--live.Opens == 0)
            {
                closed = live.Content;
                live.Content = null;
            }
            unused = live.Lookups <= 0 && live.Opens == 0;
            if (unused) _live.Remove(inode);
        }
        closed?.Dispose();
        if (unused && _meta.GetInode(inode) is { Nlink: 0 })
            _ = ReclaimInBackgroundAsync(inode);
    }

    private FileContent? LiveContent(long inode)
    {
        lock (_liveLock) return _live.TryGetValue(inode, out var live) ? live.Content : null;
    }

    private sealed record FileHandle(long Inode, int Flags, FileContent Content);
}
