using Microsoft.Win32.SafeHandles;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;

namespace TruckeeFs.Cache;

/// <summary>
/// The contents of one regular file while it is open or has changes not yet committed: the
/// newest version as a complete block map (blocks staged on local disk or stored objects;
/// holes absent), and the versions closes sealed that wait to be committed.
///
/// Write-back: writes change staged blocks. A close seals the newest version (freezes its
/// staged blocks and writes its journal entry, see <see cref="SealedVersion"/>); the upload
/// queue later commits the newest sealed version: stores its staged blocks not yet stored as
/// immutable objects, then records the complete block map, size and times in one metadata
/// transaction. Versions sealed while an older one waits are coalesced: only the newest is
/// committed. Reads always see the newest version. Only touched blocks are staged or stored, and
/// no whole file is ever held in memory.
///
/// On a remote store, a block a sequential writer has filled and moved past is frozen and
/// uploaded at once (an <see cref="EarlyUpload"/>), while the writer goes on: the commit after
/// the close then mostly finds its blocks stored. Nothing else changes: the block still belongs
/// to no version until a seal, a later write to it stages a new copy, and after a crash it is
/// recovered like any block written since the last close.
///
/// Threading: one operation at a time per file holds its lock (an async lock), any thread; reads
/// wait for downloads without it. Commits take a second lock so that one commit at a time runs
/// while reads and writes go on.
/// </summary>
internal sealed class FileContent : IDisposable
{
    private const int UploadParallelism = 8;
    /// <summary>
    /// Readers of stored blocks an open file keeps (see <see cref="CleanReader"/>): enough for
    /// random reads all over a file of 512 MiB in 4 MiB blocks. With 32, random 4 KiB reads of
    /// a 256 MiB file opened a block file for every other read, and ran 17-22% slower.
    /// </summary>
    internal const int MaxCleanHandles = 128;
    private const long SequentialSlack = 1 << 20;
    private readonly long _inode;
    private readonly long _blockSize;
    private readonly ContentServices _services;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly SemaphoreSlim _commitLock = new(1, 1);
    private readonly Dictionary<long, Block> _blocks = [];
    private readonly OrderedDictionary<string, BlockReader> _cleanHandles = [];
    private readonly HashSet<string> _pinned = [];
    private long _sequentialEnd;
    private int _sequentialReads;
    private long _writeEnd;
    private int _readAheadBlocks;
    private long _readAheadFrom;
    private SealedVersion? _sealed;
    private SealedVersion? _committing;
    private AttributeChange _changedAttributes = AttributeChange.None;
    private bool _marked;
    private int _openHandles;

    public FileContent(long inode, Inode attributes, IReadOnlyList<BlockRef> blocks, ContentServices services)
    {
        _inode = inode;
        _services = services;
        _blockSize = services.BlockSize;
        Load(attributes, blocks);
    }

    /// <summary>The contents of a file whose sealed version a previous mount left uncommitted (it was killed).</summary>
    public FileContent(long inode, Inode attributes, SealedVersion recovered, ContentServices services)
        : this(inode, attributes, [], services)
    {
        foreach (var (index, block) in recovered.Blocks) _blocks[index] = block;
        Size = recovered.Size;
        Mtime = recovered.Mtime;
        Ctime = recovered.Ctime;
        _changedAttributes = recovered.Attributes;
        _sealed = recovered;
        CountAllocated();
        _services.Statistics.AddStagedBytes(recovered.StagedBlocks.Sum(b => b.Length));
    }

    public long Inode => _inode;

    public long Size { get; private set; }
    public long Mtime { get; private set; }
    public long Ctime { get; private set; }

    /// <summary>
    /// Mode, owner and atime changed while the file has changes not committed: they go into
    /// the file's next version, committed with its contents (one transaction instead of one per
    /// change; writers such as tar set them all before close). Mtime is <see cref="Mtime"/>.
    /// </summary>
    public AttributeChange ChangedAttributes => _changedAttributes;

    /// <summary>
    /// Bytes the newest version's blocks hold: a hole holds none, nor do the zeros that end a
    /// block past its staged or stored bytes. The st_blocks of a file with changes not
    /// committed; its commit counts them the same way.
    /// </summary>
    public long Allocated { get; private set; }

    /// <summary>The inode's row as this content's last commit left it (null before one landed here).</summary>
    public Inode? LastCommitted { get; private set; }

    /// <summary>The metadata content version the committed part of this content matches (the one loaded or last committed here).</summary>
    public long Version { get; private set; }

    /// <summary>Changed since the last seal.</summary>
    public bool IsDirty { get; private set; }

    /// <summary>Changes exist that metadata does not have yet: size and times override the metadata's.</summary>
    public bool HasUncommitted => IsDirty || _sealed is not null || _committing is not null;

    /// <summary>A sealed version waits to be committed.</summary>
    public bool HasSealed => _sealed is not null;

    /// <summary>Open file descriptions of this file on this mount (the upload queue's hold is not one).</summary>
    public int OpenHandles => Volatile.Read(ref _openHandles);

    public void AddHandle() => Interlocked.Increment(ref _openHandles);

    public void RemoveHandle() => Interlocked.Decrement(ref _openHandles);

    /// <summary>
    /// Reads what the newest version holds at <paramref name="offset"/>. Bytes of stored blocks
    /// still downloading are waited for without the file's lock, so that other reads and writes
    /// of the file go on meanwhile; the read returns the version as it was when it began.
    /// </summary>
    public async ValueTask<int> ReadAsync(long offset, Memory<byte> destination)
    {
        List<PendingRead>? pending = null;
        try
        {
            int count;
            await _lock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (offset >= Size) return 0;
                count = (int)Math.Min(destination.Length, Size - offset);
                ReadAhead(offset, count);
                for (var done = 0; done < count;)
                {
                    var position = offset + done;
                    var index = position / _blockSize;
                    var within = position % _blockSize;
                    var chunk = (int)Math.Min(count - done, _blockSize - within);
                    if (ReadBlock(index, within, destination.Slice(done, chunk)) is { } stored) (pending ??= []).Add(stored);
                    done += chunk;
                }
            }
            finally
            {
                _lock.Release();
            }
            foreach (var read in pending ?? []) await FinishReadAsync(read).ConfigureAwait(false);
            return count;
        }
        finally
        {
            foreach (var read in pending ?? []) read.Reader.Dispose();
        }
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var sequential = offset == _writeEnd;
            for (var done = 0; done < data.Length;)
            {
                var position = offset + done;
                var index = position / _blockSize;
                var within = position % _blockSize;
                var chunk = (int)Math.Min(data.Length - done, _blockSize - within);
                var held = BytesOf(index);
                var staged = await StageAsync(index, overwritesAll: within == 0 && chunk == _blockSize).ConfigureAwait(false);
                var before = staged.Length;
                staged.Write(data.Span.Slice(done, chunk), within);
                _services.Statistics.AddStagedBytes(staged.Length - before);
                Allocated += staged.Length - held;
                done += chunk;
                if (sequential && within + chunk == _blockSize && staged.Length == _blockSize) await UploadEarlyAsync(staged).ConfigureAwait(false);
            }
            _writeEnd = offset + data.Length;
            Size = Math.Max(Size, offset + data.Length);
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Changes attributes as part of the newest version: an explicit mtime replaces the one the
    /// writes so far gave it (later writes move it again).
    /// </summary>
    public async ValueTask ChangeAttributesAsync(AttributeChange change, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            _changedAttributes = _changedAttributes.Then(change with { Mtime = null });
            if (change.Mtime is { } mtime) Mtime = mtime;
            Ctime = now;
            IsDirty = true;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// lseek(2) with SEEK_DATA (<paramref name="data"/>) or SEEK_HOLE: the first offset from
    /// <paramref name="offset"/> on in bytes a block holds, or in a hole (the end of the file
    /// is one); -1 (ENXIO) at or past the end, or when no data follows. A hole is a block the
    /// file does not have or the zeros that end a block past the bytes it holds (see
    /// <see cref="Allocated"/>), so a file of a few bytes here and there shows just those.
    /// </summary>
    public async ValueTask<long> SeekAsync(long offset, bool data)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (offset >= Size) return -1;
            var index = offset / _blockSize;
            if (data)
            {
                if (offset - index * _blockSize < BytesOf(index)) return offset;
                var next = NextBlock(index + 1);
                return next is null || next * _blockSize >= Size ? -1 : next.Value * _blockSize;
            }
            for (var position = offset; ; position = ++index * _blockSize)
            {
                var held = BytesOf(index);
                if (position - index * _blockSize >= held) return Math.Min(Size, position);
                if (held < _blockSize) return Math.Min(Size, index * _blockSize + held);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// The first block at or after <paramref name="index"/> that holds bytes. Copying tools seek
    /// from hole to data extent by extent: the blocks just ahead are tried before all of them.
    /// </summary>
    private long? NextBlock(long index)
    {
        for (var probe = index; probe < index + 64; probe++)
        {
            if (BytesOf(probe) > 0) return probe;
        }
        long? next = null;
        foreach (var present in _blocks.Keys)
        {
            if (present >= index && (next is null || present < next) && BytesOf(present) > 0) next = present;
        }
        return next;
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
                foreach (var index in _blocks.Keys.Where(i => i >= keep).ToList()) DropBlock(index);
                var tail = size % _blockSize;
                if (tail != 0 && _blocks.TryGetValue(size / _blockSize, out var last) && last.Bytes > tail)
                {
                    var staged = await StageAsync(size / _blockSize, overwritesAll: false).ConfigureAwait(false);
                    var before = staged.Length;
                    staged.Truncate(tail);
                    _services.Statistics.AddStagedBytes(staged.Length - before);
                }
                CountAllocated();
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
                    DropBlock(index);
                }
                else if (_blocks.ContainsKey(index))
                {
                    var staged = await StageAsync(index, overwritesAll: false).ConfigureAwait(false);
                    var before = staged.Length;
                    staged.WriteZeros(within, Math.Min(chunk, Math.Max(0, staged.Length - within)));
                    _services.Statistics.AddStagedBytes(staged.Length - before);
                }
                position += chunk;
            }
            CountAllocated();
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// The blocks that lie wholly inside [offset, offset+length), for sharing with another file:
    /// a stored block's ref, a hole's ref with a null cap, or null for a block staged and not
    /// stored (its bytes must be copied). The caller commits first so that few are staged.
    /// </summary>
    public async ValueTask<IReadOnlyList<BlockRef?>> WholeBlocksAsync(long offset, long length)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var blocks = new List<BlockRef?>();
            for (var index = offset / _blockSize; (index + 1) * _blockSize <= offset + length; index++)
            {
                blocks.Add(!_blocks.TryGetValue(index, out var block) ? new BlockRef(index, null, 0)
                    : block.Staged is null ? new BlockRef(index, block.Cap, block.Length)
                    : block.Staged.Cap is { } cap ? new BlockRef(index, cap, block.Staged.Length)
                    : null);
            }
            return blocks;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Makes whole blocks of this file share another file's objects (copy_file_range without
    /// copying bytes); a null cap makes a hole. <paramref name="firstIndex"/> is this file's
    /// first block to replace.
    /// </summary>
    public async ValueTask ShareBlocksAsync(long firstIndex, IReadOnlyList<BlockRef> blocks, long now)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            for (var i = 0; i < blocks.Count; i++)
            {
                var index = firstIndex + i;
                DropBlock(index);
                if (blocks[i].Cap is { } cap) _blocks[index] = Block.Stored(cap, blocks[i].Length);
            }
            CountAllocated();
            Size = Math.Max(Size, (firstIndex + blocks.Count) * _blockSize);
            Touch(now);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// close(2): seals the newest version if it changed since the last seal (its staged blocks
    /// freeze and its journal entry is written: from here a crash of the mount no longer loses
    /// it), and makes sure other mounts see a commit pending until it lands. With
    /// <paramref name="durable"/> the sealed version is on stable storage when this returns.
    ///
    /// With <paramref name="committingNow"/> the caller commits the version before its close
    /// returns: it needs neither a journal entry nor the other mounts' attention (a failed
    /// commit calls this again without it). A journaled version still waiting is replaced only by
    /// a journaled one, so that no entry ever names blocks that are gone.
    /// </summary>
    public async ValueTask<SealOutcome> SealAsync(bool durable, bool committingNow = false)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsDirty)
            {
                foreach (var block in _blocks.Values) block.Staged?.Freeze(durable);
                var version = new SealedVersion(_inode, new Dictionary<long, Block>(_blocks), Size, Mtime, Ctime, _changedAttributes) { IsFirst = Version == 0 };
                if (!committingNow || _sealed?.Journaled == true || _committing?.Journaled == true)
                    version.WriteJournal(_services.JournalPath(_inode), durable);
                var previous = _sealed;
                _sealed = version;
                IsDirty = false;
                // An older sealed version nobody started to commit is superseded: only the newest is uploaded.
                if (previous is not null) ReleaseUnused(previous.StagedBlocks);
            }
            else if (durable && _sealed is { } sealedBefore)
            {
                sealedBefore.MakeDurable(_services.JournalPath(_inode));
            }
            if (_sealed is null && _committing is null) return SealOutcome.Clean;
            if (!_marked && !committingNow)
            {
                try
                {
                    await _services.MarkPendingAsync(_inode, true).ConfigureAwait(false);
                    _marked = true;
                }
                catch (CoordinatorException)
                {
                    return SealOutcome.Unmarked;
                }
            }
            return SealOutcome.Pending;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Commits the newest sealed version, if any: stores its staged blocks not stored yet, then
    /// records it in metadata as the file's complete new version. Returns the status (0, or
    /// ENOENT if the inode is gone, when the version is dropped) and, when a commit landed, the
    /// inode's row as it left it. A content store failure throws
    /// (<see cref="Content.ContentStoreException"/> or <see cref="IOException"/>) and keeps the
    /// version staged and sealed for a retry; nothing of it becomes visible before every block
    /// is stored.
    /// </summary>
    public async ValueTask<(int Status, Inode? Committed)> CommitSealedAsync()
    {
        await _commitLock.WaitAsync().ConfigureAwait(false);
        try
        {
            SealedVersion? version;
            await _lock.WaitAsync().ConfigureAwait(false);
            try
            {
                version = _sealed;
                _sealed = null;
                _committing = version;
            }
            finally
            {
                _lock.Release();
            }
            if (version is null) return (0, null);

            var status = 0;
            Inode? updated = null;
            IReadOnlyList<string> unreferenced = [];
            try
            {
                // In a commit scope from the first upload: identical bytes share a cap, and the
                // collector must not delete an object this version is about to reference.
                using var scope = await _services.Collector.EnterCommitAsync().ConfigureAwait(false);
                await UploadAsync(version).ConfigureAwait(false);
                status = _services.Meta.CommitContent(_inode, version.ToCommit(), out updated, out unreferenced);
            }
            catch
            {
                await _lock.WaitAsync().ConfigureAwait(false);
                try
                {
                    _committing = null;
                    if (_sealed is null) _sealed = version;
                    else ReleaseUnused(version.StagedBlocks);
                    // The version waits for a retry, maybe long: from now on it survives a power
                    // loss too (until here it relied on the kernel writing it back, as any file
                    // closed without fsync does).
                    _sealed.MakeDurable(_services.JournalPath(_inode));
                }
                finally
                {
                    _lock.Release();
                }
                throw;
            }

            await _lock.WaitAsync().ConfigureAwait(false);
            try
            {
                _committing = null;
                if (status == 0)
                {
                    Version = updated!.Version;
                    LastCommitted = updated.Clone();
                    // Changes made since the seal are still to come, in a newer version.
                    if (_sealed is null && !IsDirty) _changedAttributes = AttributeChange.None;
                    // Blocks not written since the seal are now stored objects: serve them from the cache.
                    foreach (var staged in version.StagedBlocks)
                    {
                        if (_blocks.TryGetValue(staged.Index, out var block) && ReferenceEquals(block.Staged, staged))
                            _blocks[staged.Index] = Block.Stored(staged.Cap!, staged.Length);
                    }
                }
                // The journal entry goes before the blocks it names: a crash between the two
                // leaves unnamed frozen blocks (deleted at the next start), never a journal entry
                // naming missing blocks.
                if (_sealed is null && version.Journaled) File.Delete(_services.JournalPath(_inode));
                ReleaseUnused(version.StagedBlocks);
                if (_sealed is null && _marked)
                {
                    _marked = false;
                    await _services.MarkPendingAsync(_inode, false).ConfigureAwait(false);
                }
            }
            finally
            {
                _lock.Release();
            }
            _services.Collector.Discard(unreferenced);
            return (status, status == 0 ? updated : null);
        }
        finally
        {
            _commitLock.Release();
        }
    }

    /// <summary>
    /// Reloads the block map when metadata has a newer content version (another mount committed)
    /// and this mount has no changes of its own pending. Returns whether anything was reloaded.
    /// </summary>
    public async ValueTask<bool> RefreshAsync(Inode row)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            // Only forward: a row read before this mount's own commit landed is older than what
            // this content holds, and must not roll it back.
            if (row.Version <= Version || HasUncommitted) return false;
            var current = _services.Meta.GetInode(_inode) ?? row;
            var blocks = _services.Meta.GetBlocks(_inode);
            _blocks.Clear();
            Load(current, blocks);
            return true;
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose()
    {
        // Staged blocks of changes never sealed stay on disk until the next mount's scan removes them.
        foreach (var block in _blocks.Values) block.Staged?.Close();
        foreach (var reader in _cleanHandles.Values) reader.Dispose();
        _cleanHandles.Clear();
        foreach (var cap in _pinned) _services.Cache.Unpin(cap);
        _pinned.Clear();
        _lock.Dispose();
        _commitLock.Dispose();
    }

    private void Load(Inode attributes, IReadOnlyList<BlockRef> blocks)
    {
        foreach (var block in blocks)
        {
            if (block.Cap is not null) _blocks[block.Index] = Block.Stored(block.Cap, block.Length);
        }
        CountAllocated();
        Size = attributes.Size;
        Mtime = attributes.Mtime;
        Ctime = attributes.Ctime;
        Version = attributes.Version;
    }

    private async Task UploadAsync(SealedVersion version)
    {
        // Blocks due for an early upload last: waiting for those must not hold up the others.
        var pending = version.StagedBlocks.Where(b => b.Cap is null).OrderBy(b => b.EarlyUpload is not null).ToList();
        // Most versions change one block: storing it on this thread spares the hops between
        // threads that a parallel loop costs (a local store takes microseconds).
        if (pending.Count == 1)
        {
            await UploadAsync(pending[0], CancellationToken.None).ConfigureAwait(false);
            return;
        }
        await Parallel.ForEachAsync(pending, new ParallelOptions { MaxDegreeOfParallelism = UploadParallelism }, UploadAsync).ConfigureAwait(false);
    }

    private async ValueTask UploadAsync(StagedBlock staged, CancellationToken cancellationToken)
    {
        // A block due for an early upload is stored again only if that upload failed.
        staged.Cap = (staged.EarlyUpload is { } early ? await early.Cap.ConfigureAwait(false) : null)
            ?? await _services.StoreAsync(staged.Path, staged.Length, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Freezes a block the writer has just filled, moving on sequentially, and has the mount
    /// store it as soon as it can (see <see cref="EarlyUpload"/>). Not on a local store: there
    /// storing costs no wait worth hiding.
    /// </summary>
    private async ValueTask UploadEarlyAsync(StagedBlock staged)
    {
        if (_services.Store.IsLocal) return;
        // Held from before the object exists: see EarlyUpload.
        var upload = new EarlyUpload(staged, await _services.Collector.EnterCommitAsync().ConfigureAwait(false));
        staged.FreezeForUpload(upload);
        _services.UploadEarly(upload);
    }

    private void Touch(long now)
    {
        Mtime = now;
        Ctime = now;
        IsDirty = true;
    }

    /// <summary>
    /// Reads a block's part of a read, under the lock: staged bytes, holes and bytes past a
    /// block's end at once; bytes of a stored block are left to <see cref="FinishReadAsync"/>
    /// (returned with a share of the block's reader).
    /// </summary>
    private PendingRead? ReadBlock(long index, long within, Memory<byte> destination)
    {
        var read = 0;
        if (_blocks.TryGetValue(index, out var block))
        {
            if (block.Staged is { } staged)
            {
                read = staged.Read(destination.Span, within);
            }
            else if (within < block.Length)
            {
                var stored = (int)Math.Min(destination.Length, block.Length - within);
                destination.Span[stored..].Clear();
                return new PendingRead(block.Cap!, CleanReader(block.Cap!, block.Length, within).Share(), within, destination[..stored]);
            }
        }
        // Past the end of a short block, or in a hole: zeros.
        destination.Span[read..].Clear();
        return null;
    }

    /// <summary>Reads a stored block's part of a read, waiting for its download if need be, without the lock.</summary>
    private async ValueTask FinishReadAsync(PendingRead read)
    {
        var reader = read.Reader;
        try
        {
            var count = await reader.ReadAsync(read.Within, read.Destination).ConfigureAwait(false);
            read.Destination.Span[count..].Clear();
        }
        catch (Content.ContentStoreException)
        {
            // The download failed: the next read tries again with a new one.
            await _lock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_cleanHandles.TryGetValue(read.Cap, out var current) && ReferenceEquals(current, reader)) DropReader(read.Cap);
            }
            finally
            {
                _lock.Release();
            }
            throw;
        }
    }

    /// <summary>
    /// The writable staged copy of a block, creating it with the block's current bytes (unless
    /// all will be overwritten). A block frozen by a seal is copied, never written in place.
    /// </summary>
    private async ValueTask<StagedBlock> StageAsync(long index, bool overwritesAll)
    {
        _blocks.TryGetValue(index, out var block);
        if (block.Staged is { Frozen: false } writable) return writable;
        var staged = StagedBlock.Create(index, _services.NewStagedPath(_inode, index));
        if (!overwritesAll)
        {
            if (block.Staged is { } frozen)
            {
                using var source = frozen.OpenRead();
                staged.CopyFrom(source, frozen.Length);
            }
            else if (block.Cap is { } cap)
            {
                var reader = CleanReader(cap, block.Length, 0);
                try
                {
                    staged.CopyFrom(await reader.HandleAsync(block.Length).ConfigureAwait(false), block.Length);
                }
                catch (Content.ContentStoreException)
                {
                    DropReader(cap);
                    staged.Delete();
                    throw;
                }
            }
        }
        _services.Statistics.AddStagedBytes(staged.Length);
        _blocks[index] = Block.Of(staged);
        // A block frozen for an early upload belongs to no version yet: nothing holds it any more.
        if (block.Staged is { } replaced) ReleaseUnused([replaced]);
        return staged;
    }

    /// <summary>The bytes block <paramref name="index"/> holds (0 for a hole); see <see cref="Allocated"/>.</summary>
    private long BytesOf(long index) => _blocks.TryGetValue(index, out var block) ? block.Bytes : 0;

    /// <summary>Counts <see cref="Allocated"/> afresh, after a change of several blocks (the caller holds the lock).</summary>
    private void CountAllocated()
    {
        long bytes = 0;
        foreach (var block in _blocks.Values) bytes += block.Bytes;
        Allocated = bytes;
    }

    private void DropBlock(long index)
    {
        if (_blocks.Remove(index, out var block) && block.Staged is { } staged) ReleaseUnused([staged]);
    }

    /// <summary>
    /// Lets go of staged blocks that neither the newest version nor a sealed or committing one
    /// holds: stored ones become cached blocks, the others are deleted.
    /// </summary>
    private void ReleaseUnused(IEnumerable<StagedBlock> candidates)
    {
        foreach (var staged in candidates)
        {
            if (_blocks.TryGetValue(staged.Index, out var block) && ReferenceEquals(block.Staged, staged)) continue;
            if (_sealed?.Holds(staged) == true || _committing?.Holds(staged) == true) continue;
            if (staged.Cap is { } cap)
            {
                staged.Close();
                _services.Cache.Adopt(cap, staged.Path);
            }
            else
            {
                staged.Delete();
            }
            _services.Statistics.AddStagedBytes(-staged.Length);
        }
    }

    /// <summary>
    /// A reader of a stored block, kept while the file is open; the block stays pinned in the
    /// cache as long. Only <see cref="MaxCleanHandles"/> are kept, so that reading through a huge file holds
    /// neither a descriptor per block nor the whole file in the cache: the oldest reader is
    /// dropped, and its block unpinned, to make room. <paramref name="firstNeeded"/> is where in
    /// the block the caller reads.
    /// </summary>
    private BlockReader CleanReader(string cap, long length, long firstNeeded)
    {
        if (_cleanHandles.TryGetValue(cap, out var reader)) return reader;
        if (_cleanHandles.Count >= MaxCleanHandles) DropReader(_cleanHandles.GetAt(0).Key);
        if (_pinned.Add(cap)) _services.Cache.Pin(cap);
        reader = _services.Cache.Open(cap, length, firstNeeded);
        _cleanHandles[cap] = reader;
        return reader;
    }

    /// <summary>Closes the reader of a block (a failed download, or room for another) and unpins the block.</summary>
    private void DropReader(string cap)
    {
        if (_cleanHandles.Remove(cap, out var reader)) reader.Dispose();
        if (_pinned.Remove(cap)) _services.Cache.Unpin(cap);
    }

    /// <summary>
    /// Sequential reads start downloads of the blocks after the one being read: one block ahead
    /// at first, twice as many each time the reader keeps going, up to as many downloads as the
    /// cache lets run at once. The kernel sends its own readahead reads concurrently, so they may
    /// arrive a little out of order: reads near the end of the previous ones still count as
    /// sequential; a read elsewhere ends the run. A run starts with its second such read: one
    /// read near the last is what random reads do now and then (within a megabyte of each other
    /// in a 256 MiB file, one in a hundred), and each fetched a whole block ahead for nothing.
    /// Blocks fetched ahead are pinned like read ones.
    /// </summary>
    private void ReadAhead(long offset, int count)
    {
        if (Math.Abs(offset - _sequentialEnd) > SequentialSlack)
        {
            _readAheadBlocks = 0;
            _readAheadFrom = 0;
            _sequentialReads = 0;
            _sequentialEnd = offset + count;
            return;
        }
        _sequentialEnd = Math.Max(_sequentialEnd, offset + count);
        if (++_sequentialReads < 2) return;
        _readAheadBlocks = Math.Clamp(_readAheadBlocks * 2, 1, _services.Cache.ReadAheadLimit);
        var next = (offset + count + _blockSize - 1) / _blockSize;
        var end = Math.Min(next + _readAheadBlocks, (Size + _blockSize - 1) / _blockSize);
        for (var index = Math.Max(next, _readAheadFrom); index < end; index++)
        {
            if (_blocks.TryGetValue(index, out var block) && block is { Staged: null, Cap: { } cap })
            {
                if (!_services.Cache.Prefetch(cap, block.Length)) break;
                if (_pinned.Add(cap)) _services.Cache.Pin(cap);
            }
            _readAheadFrom = index + 1;
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

/// <summary>Bytes of a stored block a read still has to copy, with its own share of the block's reader.</summary>
internal readonly record struct PendingRead(string Cap, BlockReader Reader, long Within, Memory<byte> Destination);

/// <summary>What a seal left for the caller to do.</summary>
internal enum SealOutcome
{
    /// <summary>Nothing changed and nothing is pending.</summary>
    Clean,

    /// <summary>A version waits to be committed, and other mounts know it (queue it).</summary>
    Pending,

    /// <summary>A version waits, but other mounts could not be told: commit it before the close returns.</summary>
    Unmarked,
}
