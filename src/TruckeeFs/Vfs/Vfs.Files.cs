using System.Collections.Concurrent;
using System.Diagnostics;
using TruckeeFs.Cache;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    private const int FallocKeepSize = 0x01;
    private const int FallocPunchHole = 0x02;
    private const int FallocZeroRange = 0x10;
    private const int CopyChunk = 1 << 20;
    private const int SeekData = 3;
    private const int SeekHole = 4;
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>Inodes whose "commit pending" marker this mount has set (it serves their staged data itself).</summary>
    private readonly ConcurrentDictionary<long, byte> _pendingHere = new();
    private readonly UploadQueue _uploads;

    /// <summary>Creates and opens a regular file (O_CREAT; the kernel turns O_EXCL on an existing name into EEXIST through lookup, and so does the metadata).</summary>
    public int Create(RequestContext context, long parent, ReadOnlySpan<byte> name, long mode, int flags, out Inode entry, out ulong handle)
    {
        handle = 0;
        var status = CreateNode(parent, name, new NewNode(FileModes.Regular | (mode & FileModes.PermissionMask), context.Uid, context.Gid), out entry,
            openedBy: OpenReferenceSession);
        // Another mount created the name since the kernel looked it up here: without O_EXCL,
        // open(2) opens what is there.
        if (status == Errno.EEXIST && (flags & OpenFlags.Exclusive) == 0) return OpenExisting(context, parent, name, flags, out entry, out handle);
        if (status != 0) return status;
        CountOpen(entry.Id);
        handle = OpenHandle(entry, flags, blocks: []);
        lock (_liveLock)
        {
            if (_live.TryGetValue(entry.Id, out var live)) live.ServedVersion = entry.Version;
        }
        return 0;
    }

    /// <summary>
    /// Opens a regular file. O_TRUNC empties it whatever the access mode, as Linux does (the
    /// kernel has checked write permission for it).
    ///
    /// Close-to-open across mounts: if another mount closed the file and its commit is still
    /// pending, the open waits (up to <see cref="VfsOptions.CommitWaitTimeout"/>) until it lands,
    /// then reloads the block map if the content version moved. <c>KeepCache</c> tells whether the
    /// kernel's page cache of the file may be kept: only when the contents are the ones this
    /// mount last served.
    /// </summary>
    public async ValueTask<(int Status, ulong Handle, bool KeepCache)> OpenAsync(long inode, int flags)
    {
        await WaitForOtherMountsAsync(inode).ConfigureAwait(false);
        ulong handle;
        Inode? row;
        // On the inode's stripe: an unlink deleting the file with its last name goes before or after.
        lock (OpenStripe(inode))
        {
            // Only another mount can have changed what this one knows (and copying the row costs every open).
            var knownVersion = _meta.IsShared ? _cache.GetInode(inode)?.Version : null;
            // A file not open here needs its block map too: read with the row, in one query, and
            // in the transaction that records this mount's reference where one is needed.
            IReadOnlyList<BlockRef>? blocks = null;
            if (NeedsOpenReference(inode)) (row, blocks) = AddOpenReference(inode);
            else if (HasContent(inode)) row = CurrentInode(inode);
            else (row, blocks) = CurrentInodeWithBlocks(inode);
            if (row is null) return (Errno.ENOENT, 0, false);
            // The kernel's attributes came from what this mount knew. If another mount committed
            // contents since, its invalidation may still be on the way, and the kernel would read
            // up to the old size: drop them before the open answers. Inside the stripe, so that a
            // concurrent open, which finds the new row known, cannot answer before the drop.
            if (_meta.IsShared && knownVersion != row.Version) _kernel?.InvalidateInode(inode, data: false);
            // No reference was recorded for anything but a regular file.
            if (row.IsDirectory) return (Errno.EISDIR, 0, false);
            if (!row.IsRegular) return (Errno.ENXIO, 0, false);
            CountOpen(inode);
            handle = OpenHandle(row, flags, blocks);
        }
        var content = _handles[handle].Content;
        await content.RefreshAsync(row).ConfigureAwait(false);
        bool keepCache;
        lock (_liveLock)
        {
            var live = _live[inode];
            keepCache = live.ServedVersion == content.Version;
            live.ServedVersion = content.Version;
        }
        if ((flags & OpenFlags.Truncate) != 0)
            await content.TruncateAsync(0, Now()).ConfigureAwait(false);
        return (0, handle, keepCache);
    }

    public async ValueTask<(int Status, int Count)> ReadAsync(ulong handle, long offset, Memory<byte> buffer)
    {
        if (!_handles.TryGetValue(handle, out var file)) return (Errno.EBADF, 0);
        if (offset < 0) return (Errno.EINVAL, 0);
        return (0, await file.Content.ReadAsync(offset, buffer).ConfigureAwait(false));
    }

    /// <summary>lseek(2) with SEEK_DATA or SEEK_HOLE (the kernel answers the other kinds itself): the offset found, or ENXIO.</summary>
    public async ValueTask<(int Status, long Offset)> SeekAsync(ulong handle, long offset, int whence)
    {
        if (!_handles.TryGetValue(handle, out var file)) return (Errno.EBADF, 0);
        if (offset < 0 || whence is not (SeekData or SeekHole)) return (Errno.EINVAL, 0);
        var found = await file.Content.SeekAsync(offset, data: whence == SeekData).ConfigureAwait(false);
        return found < 0 ? (Errno.ENXIO, 0) : (0, found);
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

    /// <summary>
    /// close(2) of one descriptor: seals the file's newest version, which a background upload
    /// then commits. From here the version survives a crash of the mount, reads on this mount
    /// serve it, and opens on other mounts wait for its commit.
    /// </summary>
    public async ValueTask<int> FlushAsync(ulong handle)
    {
        if (!_handles.TryGetValue(handle, out var file)) return Errno.EBADF;
        return await CloseVersionAsync(file.Content, durable: false).ConfigureAwait(false);
    }

    /// <summary>fsync(2): returns once the data is in the content store and its metadata commit is durable.</summary>
    public async ValueTask<int> FsyncAsync(ulong handle)
    {
        if (!_handles.TryGetValue(handle, out var file)) return Errno.EBADF;
        // A remote store's copy is what a committed fsync makes durable: flushing the staged
        // blocks too would write every byte to the local disk for nothing (a failed commit
        // makes them durable before fsync reports it). A local store's objects are the staged files.
        var status = await CommitNowAsync(file.Content, durable: _content.Store.IsLocal).ConfigureAwait(false);
        if (status == 0) _meta.Sync();
        return status;
    }

    /// <summary>The last close of an open file description.</summary>
    public async ValueTask ReleaseAsync(ulong handle)
    {
        if (!_handles.TryRemove(handle, out var file)) return;
        file.Content.RemoveHandle();
        try
        {
            await CloseVersionAsync(file.Content, durable: false).ConfigureAwait(false);
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
        // A truncation builds on the committed size and blocks, which another mount may have
        // changed: it reads the row afresh. Other changes need only the inode's kind and
        // existence (the metadata transaction checks again), and the answer may come from the
        // cache as a getattr's does: tar and cp -a set times, owner and mode of every file they
        // write, and two queries each were most of an untar's time on MariaDB.
        var row = size is null ? CachedInode(inode) : CurrentInode(inode);
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
                // truncate(2) by name is its own close; an open file's truncation (ftruncate, as
                // in open-truncate-write) reaches other mounts with the close, in one version.
                var status = content.OpenHandles == 0 ? await CloseVersionAsync(content, durable: false).ConfigureAwait(false) : 0;
                if (status != 0) return (status, null);
            }
            finally
            {
                ReleaseContent(inode);
            }
        }
        else if (AcquireLiveContent(inode) is { } live)
        {
            try
            {
                // Changes made while the file has writes not committed join them (tar, cp -a and
                // the like set times, owner and mode before close): one commit instead of one
                // each, and an explicit mtime that the commit of earlier writes cannot overwrite.
                if (live.HasUncommitted)
                {
                    await live.ChangeAttributesAsync(change, Now()).ConfigureAwait(false);
                    // Nobody has it open to close it (its upload is pending): this is its close.
                    var status = live.OpenHandles == 0 ? await CloseVersionAsync(live, durable: false).ConfigureAwait(false) : 0;
                    return status != 0 ? (status, null) : (0, Overlay(CachedInode(inode) ?? row));
                }
            }
            finally
            {
                ReleaseContent(inode);
            }
        }
        if (change.Mode is not null || change.Uid is not null || change.Gid is not null || change.Atime is not null || change.Mtime is not null)
        {
            var status = _meta.SetAttributes(inode, change, Now(), out var updated);
            if (status == 0) Publish(Invalidation.Attributes(inode));
            return (status, status == 0 ? Overlay(updated) : null);
        }
        row = CurrentInode(inode);
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

        var status = await CommitNowAsync(source.Content, durable: false).ConfigureAwait(false);
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
                foreach (var block in blocks)
                {
                    // A block written again since the commit above is copied, not shared.
                    if (block is { } stored) await target.Content.ShareBlocksAsync((offsetOut + done) / blockSize, [stored], Now()).ConfigureAwait(false);
                    else await CopyBytesAsync(source.Content, offsetIn + done, target.Content, offsetOut + done, blockSize).ConfigureAwait(false);
                    done += blockSize;
                }
            }
        }
        await CopyBytesAsync(source.Content, offsetIn + done, target.Content, offsetOut + done, count - done).ConfigureAwait(false);
        // Commit now: shared objects must be referenced before the source could drop them.
        status = await CommitNowAsync(target.Content, durable: false).ConfigureAwait(false);
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

    /// <summary>
    /// Seals the file's newest version and queues its commit; commits at once if other mounts
    /// could not be told, or if no server is involved (<see cref="CommitsAtClose"/>).
    /// </summary>
    private async ValueTask<int> CloseVersionAsync(FileContent content, bool durable)
    {
        if (CommitsAtClose) return await CommitNowAsync(content, durable).ConfigureAwait(false);
        SealOutcome outcome;
        try
        {
            outcome = await content.SealAsync(durable).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            Log.SealFailed(_log, content.Inode, e);
            return Errno.EIO;
        }
        switch (outcome)
        {
            // The tree mirror learns of contents from the commit and of names from namespace
            // calls; it has no way yet to order a background commit against a later unlink or
            // rename, so in MIRROR mode the close commits, as before write-back.
            case SealOutcome.Pending when _mirror.IsEnabled:
                return await CommitNowAsync(content, durable).ConfigureAwait(false);
            case SealOutcome.Pending:
                _uploads.Enqueue(content);
                return 0;
            case SealOutcome.Unmarked:
                // Without the marker another mount could open the file and miss this version.
                Log.MarkFailed(_log, content.Inode);
                return await CommitNowAsync(content, durable).ConfigureAwait(false);
            default:
                return 0;
        }
    }

    /// <summary>
    /// Whether a close commits before it returns: where the content store is local and the
    /// metadata embedded. The upload queue exists to hide a server's latency, and these have
    /// none; committing at once spares the journal entry. A MariaDB commit takes about a
    /// millisecond even on loopback, so there a close queues it as it does a Tahoe upload.
    /// </summary>
    private bool CommitsAtClose => _content.Store.IsLocal && !_meta.IsShared;

    /// <summary>
    /// Seals the file's newest version and commits it before returning (fsync, copy_file_range,
    /// an explicit mtime, a close where <see cref="CommitsAtClose"/>). On a local store the
    /// version goes unjournaled, as the caller waits for its commit.
    /// </summary>
    private async ValueTask<int> CommitNowAsync(FileContent content, bool durable)
    {
        try
        {
            var outcome = await content.SealAsync(durable, committingNow: _content.Store.IsLocal).ConfigureAwait(false);
            if (outcome == SealOutcome.Clean) return 0;
            return await CommitSealedAsync(content).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Content.ContentStoreException or IOException or MetaStoreException)
        {
            Log.CommitFailed(_log, e);
            await KeepForRetryAsync(content).ConfigureAwait(false);
            return Errno.EIO;
        }
    }

    /// <summary>
    /// A commit failed: the version stays sealed and staged on disk, journaled and durable, other
    /// mounts are told it is pending, and the upload queue retries it.
    /// </summary>
    private async ValueTask KeepForRetryAsync(FileContent content)
    {
        try
        {
            if (await content.SealAsync(durable: true).ConfigureAwait(false) == SealOutcome.Unmarked) Log.MarkFailed(_log, content.Inode);
        }
        catch (IOException e)
        {
            Log.SealFailed(_log, content.Inode, e);
        }
        _uploads.Enqueue(content);
    }

    /// <summary>
    /// Commits the file's newest sealed version (the upload queue's work, and fsync's). Throws
    /// when the content store or metadata fails; the version stays sealed for a retry.
    /// </summary>
    private async Task<int> CommitSealedAsync(FileContent content)
    {
        var basis = content.Version;
        using var ticket = _cache.WatchRow(content.Inode);
        var (status, committed) = await content.CommitSealedAsync().ConfigureAwait(false);
        if (committed is not null)
        {
            // The version committed is the one this mount's kernel cached as it was written
            // (every write went through it): an open need not drop the kernel's pages, if they
            // were of the version these writes started from.
            lock (_liveLock)
            {
                if (_live.TryGetValue(content.Inode, out var live) && live.ServedVersion == basis) live.ServedVersion = content.Version;
            }
            ContentCommitted(committed, ticket);
        }
        else if (status != 0)
        {
            Log.CommitDropped(_log, content.Inode, status);
        }
        await _content.Collector.CollectAsync().ConfigureAwait(false);
        return status;
    }

    /// <summary>The upload queue, wired to this mount's live inodes and counters.</summary>
    private UploadQueue NewUploadQueue() => new(
        CommitSealedAsync,
        content =>
        {
            // The queue holds the content like an open handle until it has nothing left to commit.
            lock (_liveLock) _live[content.Inode].Opens++;
            Statistics.AddQueuedUploads(1);
        },
        content =>
        {
            Statistics.AddQueuedUploads(-1);
            ReleaseContent(content.Inode);
        },
        (content, e, retry) =>
        {
            Statistics.UploadFailed();
            Log.UploadFailed(_log, content.Inode, retry.TotalSeconds, e);
        });

    /// <summary>Turns this mount's "commit pending" marker of an inode on (throws if the coordinator fails) or off (logs).</summary>
    private async ValueTask MarkPendingAsync(long inode, bool pending)
    {
        if (pending)
        {
            await _coordinator.SetStateAsync(inode, InodeStates.Sync, on: true).ConfigureAwait(false);
            _pendingHere[inode] = 0;
            return;
        }
        _pendingHere.TryRemove(inode, out _);
        try
        {
            await _coordinator.SetStateAsync(inode, InodeStates.Sync, on: false).ConfigureAwait(false);
        }
        catch (CoordinatorException e)
        {
            Log.UnmarkFailed(_log, inode, e);
        }
    }

    /// <summary>
    /// Waits while another mount has a commit of the inode pending (its "sync" state is set and
    /// not by this mount), up to <see cref="VfsOptions.CommitWaitTimeout"/>; then the open goes
    /// on with what metadata holds, and says so in the log.
    /// </summary>
    private async ValueTask WaitForOtherMountsAsync(long inode)
    {
        var clock = Stopwatch.StartNew();
        var pause = TimeSpan.FromMilliseconds(2);
        while (!_pendingHere.ContainsKey(inode))
        {
            InodeStates states;
            try
            {
                states = await _coordinator.GetStatesAsync(inode).ConfigureAwait(false);
            }
            catch (CoordinatorException e)
            {
                Log.PendingCheckFailed(_log, inode, e);
                return;
            }
            // This mount's own marker may have appeared meanwhile: the loop condition sees it.
            if ((states & InodeStates.Sync) == 0)
            {
                if (pause > TimeSpan.FromMilliseconds(2)) Log.WaitedForCommit(_log, inode, clock.Elapsed.TotalMilliseconds);
                return;
            }
            if (clock.Elapsed >= _options.CommitWaitTimeout)
            {
                Log.CommitWaitTimedOut(_log, inode, _options.CommitWaitTimeout.TotalSeconds);
                return;
            }
            await Task.Delay(pause).ConfigureAwait(false);
            pause = pause * 2 < LongestPoll ? pause * 2 : LongestPoll;
        }
    }

    /// <summary>
    /// Picks up the versions a previous mount sealed and did not commit (it was killed): each is
    /// served from its staged blocks and queued for commit, as if just closed. Blocks written
    /// after the last close (never sealed) are kept too, as a best effort: laid over the last
    /// closed version, the size grown to cover them (a truncation never followed by a close is
    /// not known).
    /// </summary>
    private async Task RecoverSealedVersionsAsync()
    {
        foreach (var left in _content.ScanStaging((path, e) => Log.DamagedJournal(_log, path, e)))
        {
            var inode = left.Inode;
            if (_meta.GetInode(inode) is not { IsRegular: true } row)
            {
                foreach (var staged in (left.Sealed?.StagedBlocks ?? []).Concat(left.Unsealed)) staged.Delete();
                File.Delete(_content.JournalPath(inode));
                continue;
            }
            var version = left.Sealed;
            if (left.Unsealed.Count > 0)
            {
                var blocks = version?.Blocks.ToDictionary()
                    ?? _meta.GetBlocks(inode).Where(b => b.Cap is not null).ToDictionary(b => b.Index, b => Block.Stored(b.Cap!, b.Length));
                var size = version?.Size ?? row.Size;
                var mtime = version?.Mtime ?? row.Mtime;
                foreach (var staged in left.Unsealed)
                {
                    if (blocks.TryGetValue(staged.Index, out var replaced) && replaced.Staged is { } older) older.Delete();
                    blocks[staged.Index] = Block.Of(staged);
                    size = Math.Max(size, staged.Index * _options.BlockSize + staged.Length);
                    mtime = Math.Max(mtime, (File.GetLastWriteTimeUtc(staged.Path) - DateTime.UnixEpoch).Ticks * 100);
                }
                version = new SealedVersion(inode, blocks, size, mtime, Math.Max(mtime, version?.Ctime ?? row.Ctime), version?.Attributes ?? AttributeChange.None);
                version.WriteJournal(_content.JournalPath(inode), durable: true);
                Log.RecoveredUnclosed(_log, inode, left.Unsealed.Count);
            }
            var content = new FileContent(inode, row, version!, _content);
            lock (_liveLock) _live[inode] = new LiveInode { Content = content };
            // Marked before queued: other mounts wait for this version from the start.
            if (await content.SealAsync(durable: false).ConfigureAwait(false) == SealOutcome.Unmarked) Log.MarkFailed(_log, inode);
            _uploads.Enqueue(content);
            Log.RecoveredStaged(_log, inode, version!.Size);
        }
    }

    /// <summary>A clean unmount: seals every open file and commits everything queued.</summary>
    private async Task DrainUploadsAsync()
    {
        foreach (var handle in _handles.Values)
            await CloseVersionAsync(handle.Content, durable: true).ConfigureAwait(false);
        var left = await _uploads.DrainAsync().ConfigureAwait(false);
        if (left == 0) return;
        Log.LeftStaged(_log, left);
        // Their commits land only when a mount starts again on this cache (the journal keeps
        // them): until then, opens elsewhere go on with the last committed versions instead of
        // waiting for markers nobody would take off.
        foreach (var inode in _pendingHere.Keys.ToList()) await MarkPendingAsync(inode, pending: false).ConfigureAwait(false);
    }

    /// <param name="blocks">The file's block map if known with <paramref name="inode"/> (empty for a file just created); read if needed otherwise.</param>
    private ulong OpenHandle(Inode inode, int flags, IReadOnlyList<BlockRef>? blocks)
    {
        var handle = (ulong)Interlocked.Increment(ref _nextHandle);
        var content = AcquireContent(inode, blocks);
        content.AddHandle();
        _handles[handle] = new FileHandle(inode.Id, flags, content);
        return handle;
    }

    /// <summary>The inode's shared content state, counted as one more open.</summary>
    /// <param name="blocks">The block map read with <paramref name="inode"/>, if it was.</param>
    private FileContent AcquireContent(Inode inode, IReadOnlyList<BlockRef>? blocks = null)
    {
        lock (_liveLock)
        {
            if (!_live.TryGetValue(inode.Id, out var live)) _live[inode.Id] = live = new LiveInode();
            live.Opens++;
            if (live.Content is not null) return live.Content;
            // Loading the block map under the lock keeps one content per inode; it is one indexed
            // read. The caller's row may predate a commit that landed (and let the previous
            // content go) since: it is read again with the map.
            if (blocks is null)
            {
                var (current, map) = CurrentInodeWithBlocks(inode.Id);
                (inode, blocks) = (current ?? inode, map);
            }
            return live.Content = new FileContent(inode.Id, inode, blocks, _content);
        }
    }

    /// <summary>Whether the inode has content state here (open, or waiting for its commit).</summary>
    private bool HasContent(long inode)
    {
        lock (_liveLock) return _live.TryGetValue(inode, out var live) && live.Content is not null;
    }

    /// <summary>A file's row, as <see cref="CurrentInode"/> reads it, with its block map.</summary>
    private (Inode? Row, IReadOnlyList<BlockRef> Blocks) CurrentInodeWithBlocks(long inode) =>
        Cached(_cache.Ticket(), _meta.GetInodeWithBlocks(inode));

    /// <summary>Records this mount's reference of a file about to open (see <see cref="NeedsOpenReference"/>), reading its row and block map in the same transaction.</summary>
    private (Inode? Row, IReadOnlyList<BlockRef> Blocks) AddOpenReference(long inode) =>
        Cached(_cache.Ticket(), _meta.AddOpen(inode, SessionId));

    /// <summary>Keeps a row read with <paramref name="ticket"/> taken before, under the rule of <see cref="MetadataCache.PutInode"/>.</summary>
    private (Inode? Row, IReadOnlyList<BlockRef> Blocks) Cached(long ticket, (Inode? Row, IReadOnlyList<BlockRef> Blocks) read)
    {
        if (read.Row is not null) _cache.PutInode(read.Row, ticket);
        return read;
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
        if (unused && CurrentInode(inode) is { Nlink: 0 })
            _ = ReclaimInBackgroundAsync(inode);
    }

    /// <summary>The inode's content if it has one (open, or pending upload), counted as one more open; null otherwise.</summary>
    private FileContent? AcquireLiveContent(long inode)
    {
        lock (_liveLock)
        {
            if (!_live.TryGetValue(inode, out var live) || live.Content is null) return null;
            live.Opens++;
            return live.Content;
        }
    }

    private sealed record FileHandle(long Inode, int Flags, FileContent Content);
}
