using System.Collections.Concurrent;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    // Offsets 1 and 2 follow "." and ".."; an entry's offset is its metadata cookie plus 2, so
    // offsets stay valid while the directory changes.
    private const long DotEntries = 2;

    // The kernel reads a directory a few kilobytes at a time; fetching a larger batch per
    // query and serving the following reads from it saves a query per read.
    private const int ListingBatch = 1024;

    private readonly ConcurrentDictionary<ulong, DirectoryHandle> _directories = new();

    public int OpenDirectory(long inode, out ulong handle)
    {
        handle = 0;
        var row = CachedInode(inode);
        if (row is null) return Errno.ENOENT;
        if (!row.IsDirectory) return Errno.ENOTDIR;
        handle = (ulong)Interlocked.Increment(ref _nextHandle);
        _directories[handle] = new DirectoryHandle(inode);
        return 0;
    }

    public void ReleaseDirectory(ulong handle) => _directories.TryRemove(handle, out _);

    /// <summary>
    /// Up to <paramref name="limit"/> entries after <paramref name="offset"/> (0 = from the
    /// start). For readdirplus, the caller calls <see cref="Remember"/> for each entry it
    /// actually returns to the kernel, other than "." and "..".
    /// </summary>
    public int ReadDirectory(ulong handle, long offset, int limit, out IReadOnlyList<ListingEntry> entries)
    {
        entries = [];
        if (!_directories.TryGetValue(handle, out var directory)) return Errno.EBADF;
        lock (directory)
        {
            var start = directory.IndexOf(offset);
            if (start < 0 || start == directory.Batch.Count)
            {
                var status = FetchListing(directory.Inode, offset, out var batch);
                if (status != 0) return status;
                directory.Refill(offset, batch);
                start = 0;
            }
            entries = directory.Batch.GetRange(start, Math.Min(limit, directory.Batch.Count - start));
            return 0;
        }
    }

    private int FetchListing(long inode, long offset, out List<ListingEntry> batch)
    {
        batch = [];
        if (offset < DotEntries)
        {
            var directory = CachedInode(inode);
            if (directory is null) return Errno.ENOENT;
            if (offset < 1) batch.Add(new ListingEntry("."u8.ToArray(), directory, 1, true));
            var parent = CachedInode(_meta.ParentOf(inode)) ?? directory;
            batch.Add(new ListingEntry(".."u8.ToArray(), parent, 2, true));
        }
        // A listing is often followed by a stat or an open of its names (ls -l, find, cp -r).
        var ticket = _cache.Ticket();
        foreach (var entry in _meta.ReadDirectory(inode, Math.Max(0, offset - DotEntries), ListingBatch))
        {
            _cache.PutName(inode, entry.Name, entry.Inode.Id, ticket);
            _cache.PutInode(entry.Inode, ticket);
            batch.Add(new ListingEntry(entry.Name, Overlay(entry.Inode), entry.Cookie + DotEntries, false));
        }
        return 0;
    }

    /// <summary>An open directory: the batch of entries fetched last, and the offset it starts at.</summary>
    private sealed class DirectoryHandle(long inode)
    {
        public long Inode => inode;
        public List<ListingEntry> Batch { get; private set; } = [];
        private long _batchOffset = -1;

        /// <summary>The index in the batch of the entry that follows <paramref name="offset"/>, or -1.</summary>
        public int IndexOf(long offset)
        {
            if (offset == _batchOffset) return 0;
            var index = Batch.FindIndex(e => e.NextOffset == offset);
            return index < 0 ? -1 : index + 1;
        }

        public void Refill(long offset, List<ListingEntry> batch)
        {
            _batchOffset = offset;
            Batch = batch;
        }
    }
}
