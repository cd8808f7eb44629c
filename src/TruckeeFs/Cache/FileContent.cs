using Microsoft.Win32.SafeHandles;
using TruckeeFs.Content;
using TruckeeFs.Meta;

namespace TruckeeFs.Cache;

/// <summary>
/// The contents of one regular file while it is open or being changed: its committed block map,
/// the blocks changed since the last commit (staged as files on local disk, one per block), and
/// blocks shared from other files by copy_file_range. Reads see the newest data; a commit
/// stores the staged blocks as new immutable objects and records the new block map, size and
/// times in one metadata transaction. Only touched blocks are ever staged or stored.
///
/// Threading: one operation at a time per file (an async lock), any thread.
/// </summary>
internal sealed class FileContent : IDisposable
{
    private const int MaxCleanHandles = 32;
    private const long SequentialSlack = 1 << 20;
    private readonly long _inode;
    private readonly long _blockSize;
    private readonly ContentServices _services;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<long, BlockRef> _committed = [];
    private readonly SortedDictionary<long, StagedBlock> _staged = [];
    private readonly Dictionary<long, BlockRef> _shared = [];
    private readonly OrderedDictionary<string, BlockReader> _cleanHandles = [];
    private readonly HashSet<string> _pinned = [];
    private long _sequentialEnd;
    private int _readAheadBlocks;
    private long _readAheadFrom;
    private long _keepBlocksBelow = long.MaxValue;

    public FileContent(long inode, Inode attributes, IReadOnlyList<BlockRef> blocks, ContentServices services)
    {
        _inode = inode;
        _services = services;
        _blockSize = services.BlockSize;
        foreach (var block in blocks) _committed[block.Index] = block;
        Size = attributes.Size;
        Mtime = attributes.Mtime;
        Ctime = attributes.Ctime;
        RecoverStagedBlocks();
    }

    public long Inode => _inode;

    public long Size { get; private set; }
    public long Mtime { get; private set; }
    public long Ctime { get; private set; }

    /// <summary>Changed since the last commit: its size and times override the metadata's.</summary>
    public bool IsDirty { get; private set; }

    public async ValueTask<int> ReadAsync(long offset, Memory<byte> destination)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (offset >= Size) return 0;
            var count = (int)Math.Min(destination.Length, Size - offset);
            ReadAhead(offset, count);
            for (var done = 0; done < count;)
            {
                var position = offset + done;
                var index = position / _blockSize;
                var within = position % _blockSize;
                var chunk = (int)Math.Min(count - done, _blockSize - within);
                await ReadBlockAsync(index, within, destination.Slice(done, chunk)).ConfigureAwait(false);
                done += chunk;
            }
            return count;
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            for (var done = 0; done < data.Length;)
            {
                var position = offset + done;
                var index = position / _blockSize;
                var within = position % _blockSize;
                var chunk = (int)Math.Min(data.Length - done, _blockSize - within);
                var staged = await StageAsync(index, overwritesAll: within == 0 && chunk == _blockSize).ConfigureAwait(false);
                staged.Write(data.Span.Slice(done, chunk), within);
                done += chunk;
            }
            Size = Math.Max(Size, offset + data.Length);
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Sets the size; data beyond a shrunk end is gone even if the file grows again.</summary>
    public async ValueTask TruncateAsync(long size, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (size < Size)
            {
                var keep = (size + _blockSize - 1) / _blockSize;
                foreach (var index in _staged.Keys.Where(i => i >= keep).ToList()) DropStaged(index);
                foreach (var index in _shared.Keys.Where(i => i >= keep).ToList()) _shared.Remove(index);
                _keepBlocksBelow = Math.Min(_keepBlocksBelow, keep);
                var tail = size % _blockSize;
                if (tail != 0)
                {
                    var staged = await StageAsync(size / _blockSize, overwritesAll: false).ConfigureAwait(false);
                    staged.Truncate(tail);
                }
            }
            Size = size;
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Makes [offset, offset+length) read as zeros without changing the size: whole blocks
    /// become holes, partial ones are staged with zeros written.
    /// </summary>
    public async ValueTask ZeroAsync(long offset, long length, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var end = Math.Min(offset + length, Size);
            for (var position = offset; position < end;)
            {
                var index = position / _blockSize;
                var within = position % _blockSize;
                var chunk = Math.Min(end - position, _blockSize - within);
                if (chunk == _blockSize)
                {
                    DropStaged(index);
                    _shared[index] = new BlockRef(index, null, 0);
                }
                else
                {
                    var staged = await StageAsync(index, overwritesAll: false).ConfigureAwait(false);
                    staged.WriteZeros(within, chunk);
                }
                position += chunk;
            }
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// The committed blocks that lie wholly inside [offset, offset+length), for sharing with
    /// another file; the caller commits first so that none is staged.
    /// </summary>
    public async ValueTask<IReadOnlyList<BlockRef>> WholeBlocksAsync(long offset, long length)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var blocks = new List<BlockRef>();
            for (var index = offset / _blockSize; (index + 1) * _blockSize <= offset + length; index++)
                blocks.Add(CommittedBlock(index) ?? new BlockRef(index, null, 0));
            return blocks;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Makes whole blocks of this file share another file's objects (copy_file_range without
    /// copying bytes). <paramref name="firstIndex"/> is this file's first block to replace.
    /// </summary>
    public async ValueTask ShareBlocksAsync(long firstIndex, IReadOnlyList<BlockRef> blocks, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            for (var i = 0; i < blocks.Count; i++)
            {
                var index = firstIndex + i;
                DropStaged(index);
                _shared[index] = blocks[i] with { Index = index };
            }
            Size = Math.Max(Size, (firstIndex + blocks.Count) * _blockSize);
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Stores the changed blocks and commits them with size and times. With
    /// <paramref name="durable"/>, staged data is on stable storage before it is stored.
    /// Returns 0 or an errno (ENOENT if the inode is gone).
    /// </summary>
    public async ValueTask<int> CommitAsync(bool durable)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!IsDirty) return 0;
            using var scope = await _services.Collector.EnterCommitAsync().ConfigureAwait(false);
            var blocks = new List<BlockRef>(_staged.Count + _shared.Count);
            foreach (var (index, staged) in _staged)
            {
                staged.Close(durable);
                var cap = await _services.Store.PutAsync(staged.Path).ConfigureAwait(false);
                blocks.Add(new BlockRef(index, cap, staged.Length));
            }
            blocks.AddRange(_shared.Values);
            var keep = Math.Min(_keepBlocksBelow, (Size + _blockSize - 1) / _blockSize);
            var status = _services.Meta.CommitContent(_inode, new ContentCommit(blocks, keep, Size, Mtime, Ctime), out _, out var unreferenced);
            if (status != 0) return status;

            foreach (var index in _committed.Keys.Where(i => i >= keep).ToList()) _committed.Remove(index);
            foreach (var block in blocks)
            {
                if (block.Cap is null) _committed.Remove(block.Index);
                else _committed[block.Index] = block;
            }
            foreach (var index in _staged.Keys.ToList()) DropStaged(index);
            _shared.Clear();
            _keepBlocksBelow = long.MaxValue;
            IsDirty = false;
            _services.Collector.Discard(unreferenced);
            return 0;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Takes the file's committed state from the metadata again, unless this content has changes
    /// of its own: another mount may have committed since it was loaded (a lock was just granted,
    /// and the holder before committed on unlock). Returns whether it did.
    /// </summary>
    public async ValueTask<bool> ReloadIfCleanAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsDirty || _services.Meta.GetInode(_inode) is not { } attributes) return false;
            var blocks = _services.Meta.GetBlocks(_inode);
            _committed.Clear();
            foreach (var block in blocks) _committed[block.Index] = block;
            Size = attributes.Size;
            Mtime = attributes.Mtime;
            Ctime = attributes.Ctime;
            return true;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Forgets staged changes of a file that no longer exists.</summary>
    public void Discard()
    {
        foreach (var index in _staged.Keys.ToList()) DropStaged(index);
        IsDirty = false;
    }

    public void Dispose()
    {
        foreach (var staged in _staged.Values) staged.Close(durable: false);
        // Uncommitted blocks (a commit failed) stay on disk for the next open or mount to retry.
        if (_staged.Count > 0) _services.AddLeftovers(_inode);
        foreach (var reader in _cleanHandles.Values) reader.Dispose();
        _cleanHandles.Clear();
        foreach (var cap in _pinned) _services.Cache.Unpin(cap);
        _pinned.Clear();
        _lock.Dispose();
    }

    private void Touch(long now)
    {
        Mtime = now;
        Ctime = now;
        IsDirty = true;
    }

    private BlockRef? CommittedBlock(long index)
    {
        if (_shared.TryGetValue(index, out var shared)) return shared.Cap is null ? null : shared;
        if (index >= _keepBlocksBelow) return null;
        return _committed.TryGetValue(index, out var block) ? block : null;
    }

    private async ValueTask ReadBlockAsync(long index, long within, Memory<byte> destination)
    {
        var read = 0;
        if (_staged.TryGetValue(index, out var staged))
        {
            read = staged.Read(destination.Span, within);
        }
        else if (CommittedBlock(index) is { } block && within < block.Length)
        {
            var reader = CleanReader(block, within);
            try
            {
                read = await reader.ReadAsync(within, destination[..(int)Math.Min(destination.Length, block.Length - within)]).ConfigureAwait(false);
            }
            catch (ContentStoreException)
            {
                // The download failed: the next read tries again with a new one.
                _cleanHandles.Remove(block.Cap!);
                reader.Dispose();
                throw;
            }
        }
        // Past the end of a short block, or in a hole: zeros.
        destination.Span[read..].Clear();
    }

    /// <summary>The staged copy of a block, creating it (with the block's current bytes, unless all will be overwritten).</summary>
    private async ValueTask<StagedBlock> StageAsync(long index, bool overwritesAll)
    {
        if (_staged.TryGetValue(index, out var staged)) return staged;
        staged = StagedBlock.Create(_services.StagedPath(_inode, index));
        if (!overwritesAll && CommittedBlock(index) is { } block)
        {
            var reader = CleanReader(block, 0);
            try
            {
                staged.CopyFrom(await reader.HandleAsync(block.Length).ConfigureAwait(false), block.Length);
            }
            catch (ContentStoreException)
            {
                _cleanHandles.Remove(block.Cap!);
                reader.Dispose();
                staged.Close(durable: false);
                File.Delete(staged.Path);
                throw;
            }
        }
        _shared.Remove(index);
        _staged[index] = staged;
        return staged;
    }

    private void DropStaged(long index)
    {
        if (!_staged.Remove(index, out var staged)) return;
        staged.Close(durable: false);
        File.Delete(staged.Path);
    }

    /// <summary>
    /// A reader of a committed block, kept while the file is open; the block stays pinned in the
    /// cache as long. Only a few dozen are kept, so that reading through a huge file holds
    /// neither a descriptor per block nor the whole file in the cache: the oldest reader is
    /// dropped, and its block unpinned, to make room. <paramref name="firstNeeded"/> is where in
    /// the block the caller reads.
    /// </summary>
    private BlockReader CleanReader(BlockRef block, long firstNeeded)
    {
        var cap = block.Cap!;
        if (_cleanHandles.TryGetValue(cap, out var reader)) return reader;
        if (_cleanHandles.Count >= MaxCleanHandles)
        {
            var (oldest, old) = _cleanHandles.GetAt(0);
            _cleanHandles.RemoveAt(0);
            old.Dispose();
            if (_pinned.Remove(oldest)) _services.Cache.Unpin(oldest);
        }
        if (_pinned.Add(cap)) _services.Cache.Pin(cap);
        reader = _services.Cache.Open(cap, block.Length, firstNeeded);
        _cleanHandles[cap] = reader;
        return reader;
    }

    /// <summary>
    /// Sequential reads start downloads of the blocks after the one being read: one block ahead
    /// at first, twice as many each time the reader keeps going, up to as many downloads as the
    /// cache lets run at once. The kernel sends its own readahead reads concurrently, so they may
    /// arrive a little out of order: reads near the end of the previous ones still count as
    /// sequential; a read elsewhere ends the run. Blocks fetched ahead are pinned like read ones.
    /// </summary>
    private void ReadAhead(long offset, int count)
    {
        if (Math.Abs(offset - _sequentialEnd) > SequentialSlack)
        {
            _readAheadBlocks = 0;
            _readAheadFrom = 0;
            _sequentialEnd = offset + count;
            return;
        }
        _readAheadBlocks = Math.Clamp(_readAheadBlocks * 2, 1, _services.Cache.ReadAheadLimit);
        _sequentialEnd = Math.Max(_sequentialEnd, offset + count);
        var next = (offset + count + _blockSize - 1) / _blockSize;
        var end = Math.Min(next + _readAheadBlocks, (Size + _blockSize - 1) / _blockSize);
        for (var index = Math.Max(next, _readAheadFrom); index < end; index++)
        {
            if (!_staged.ContainsKey(index) && CommittedBlock(index) is { } block)
            {
                if (!_services.Cache.Prefetch(block.Cap!, block.Length)) break;
                if (_pinned.Add(block.Cap!)) _services.Cache.Pin(block.Cap!);
            }
            _readAheadFrom = index + 1;
        }
    }

    /// <summary>Blocks staged before a crash or a failed commit are part of the file: its size covers them.</summary>
    private void RecoverStagedBlocks()
    {
        foreach (var (index, path) in _services.LeftoverBlocks(_inode))
        {
            var staged = StagedBlock.Open(path);
            _staged[index] = staged;
            Size = Math.Max(Size, index * _blockSize + staged.Length);
            IsDirty = true;
        }
    }

    internal static int ReadFully(SafeFileHandle handle, Span<byte> destination, long offset)
    {
        var total = 0;
        while (total < destination.Length)
        {
            var n = RandomAccess.Read(handle, destination[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
