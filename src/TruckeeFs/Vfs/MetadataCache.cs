using System.Collections.Concurrent;
using System.Diagnostics;
using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

/// <summary>
/// Inode rows and names the metadata database returned lately, so that the kernel's attribute,
/// lookup and xattr requests do not each cost a query. Entries go stale by rule, not by chance:
///
/// * every change this mount commits drops what it changed (the invalidations it publishes to
///   other mounts, applied here first);
/// * other mounts' invalidations drop entries as they arrive (where the coordinator carries them);
/// * an entry lives no longer than the kernel may cache the same answer (attr_timeout,
///   entry_timeout), so a lost invalidation leaves it no staler than the kernel's own caches.
///
/// A query that ran while a change landed must not put back what the change dropped: each
/// query takes a ticket (<see cref="Ticket"/>) before it reads, and its result is kept only if
/// no invalidation came since. The rows of a change this mount just committed are kept as they
/// are (<see cref="PutCommitted"/>), before the kernel learns of them.
/// Threading: every member is safe to call from many threads at once.
/// </summary>
internal sealed class MetadataCache(TimeSpan attributeLifetime, TimeSpan entryLifetime, int capacity = 65536)
{
    private readonly long _attributeTicks = (long)(attributeLifetime.TotalSeconds * Stopwatch.Frequency);
    private readonly long _entryTicks = (long)(entryLifetime.TotalSeconds * Stopwatch.Frequency);
    private readonly CountedMap<long, (Inode Row, long Expires)> _inodes = new();
    private readonly CountedMap<NameKey, (long Inode, long Expires)> _names = new();
    // Inodes known to have no extended attributes at all (value: expiry): the kernel asks for
    // security.capability before every write(2), and nearly every file has none.
    private readonly CountedMap<long, long> _withoutXattrs = new();
    // Directories whose every name this mount knows: it created them and made every change of
    // their names since. A lookup of any other name there is answered "no such name" without a
    // query (the kernel looks up each name before it creates it).
    private readonly CountedMap<long, KnownDirectory> _knownDirectories = new();
    // Invalidations of each inode a change of this mount holds a RowTicket of (see WatchRow).
    private readonly Lock _watchLock = new();
    private readonly Dictionary<long, RowWatch> _watched = [];
    private long _generation;
    private int _knownNames;

    /// <summary>Whether anything may be kept at all (timeouts of zero keep nothing).</summary>
    public bool Enabled => _attributeTicks > 0;

    /// <summary>Taken before a query whose result may be kept: see <see cref="PutInode"/>.</summary>
    public long Ticket() => Volatile.Read(ref _generation);

    /// <summary>A copy of the cached row, or null.</summary>
    public Inode? GetInode(long inode)
    {
        if (!_inodes.TryGetValue(inode, out var entry)) return null;
        if (entry.Expires >= Stopwatch.GetTimestamp()) return entry.Row.Clone();
        _inodes.Remove(KeyValuePair.Create(inode, entry));
        return null;
    }

    /// <summary>The inode a cached name points to, or null.</summary>
    public long? GetName(long parent, byte[] name)
    {
        var key = new NameKey(parent, name);
        if (!_names.TryGetValue(key, out var entry)) return null;
        if (entry.Expires >= Stopwatch.GetTimestamp()) return entry.Inode;
        _names.Remove(KeyValuePair.Create(key, entry));
        return null;
    }

    /// <summary>
    /// Keeps a row read from the database, unless an invalidation came since
    /// <paramref name="ticket"/> (taken before the read).
    /// </summary>
    public void PutInode(Inode row, long ticket)
    {
        if (!Enabled || Ticket() != ticket) return;
        PutCommitted(row);
        // An invalidation may have slipped in between the check and the store: undo.
        if (Ticket() != ticket) _inodes.Remove(row.Id);
    }

    /// <summary>
    /// Taken before a change of this mount whose resulting row may be kept
    /// (<see cref="PutChanged"/>, <see cref="PutCreatedName"/>); disposed when the change is
    /// done. It counts the invalidations of that inode's row alone, exactly: a count shared with
    /// other inodes (stripes) let unrelated changes stop it, and a directory whose names were
    /// known lost them for good when the commit of a file closed in it (running beside the next
    /// create) happened to share its stripe, once in 256 files.
    /// </summary>
    public RowTicket WatchRow(long inode)
    {
        lock (_watchLock)
        {
            if (!_watched.TryGetValue(inode, out var watch)) _watched[inode] = watch = new RowWatch();
            watch.Holders++;
            return new RowTicket(this, inode, watch, watch.Invalidations);
        }
    }

    /// <summary>Inodes some ticket watches (for tests: none once every change is done).</summary>
    internal int WatchedRows
    {
        get
        {
            lock (_watchLock) return _watched.Count;
        }
    }

    /// <summary>Whether the row was invalidated exactly once since <paramref name="ticket"/> was taken: by the change's own invalidation.</summary>
    private bool OnlyOwnInvalidation(RowTicket ticket)
    {
        lock (_watchLock) return ticket.Watch.Invalidations == ticket.Start + 1;
    }

    private void Unwatch(RowTicket ticket)
    {
        lock (_watchLock)
        {
            if (--ticket.Watch.Holders == 0) _watched.Remove(ticket.Inode);
        }
    }

    /// <summary>
    /// Keeps <paramref name="row"/> as a change of this mount committed it, unless the row was
    /// invalidated since <paramref name="ticket"/> (taken before the change) other than by the
    /// change's own invalidation, applied before this call: another change, of this mount or
    /// another, may have followed it.
    /// </summary>
    public void PutChanged(Inode row, RowTicket ticket)
    {
        if (!Enabled || !OnlyOwnInvalidation(ticket)) return;
        PutCommitted(row);
        if (!OnlyOwnInvalidation(ticket)) _inodes.Remove(row.Id);
    }

    /// <summary>Keeps a name read from the database, under the same rule.</summary>
    public void PutName(long parent, byte[] name, long inode, long ticket)
    {
        if (!Enabled || Ticket() != ticket) return;
        PutCommittedName(parent, name, inode);
        if (Ticket() != ticket) _names.Remove(new NameKey(parent, name));
    }

    /// <summary>Keeps the row a change of this mount just committed (nobody else can have changed it yet).</summary>
    public void PutCommitted(Inode row)
    {
        if (!Enabled) return;
        MakeRoom();
        _inodes.Set(row.Id, (row.Clone(), Stopwatch.GetTimestamp() + _attributeTicks));
    }

    /// <summary>Keeps a name a change of this mount just committed.</summary>
    public void PutCommittedName(long parent, byte[] name, long inode)
    {
        if (!Enabled || _entryTicks <= 0) return;
        MakeRoom();
        _names.Set(new NameKey(parent, name), (inode, Stopwatch.GetTimestamp() + _entryTicks));
    }

    /// <summary>Whether the inode is known to have no extended attributes.</summary>
    public bool HasNoXattrs(long inode)
    {
        if (!_withoutXattrs.TryGetValue(inode, out var expires)) return false;
        if (expires >= Stopwatch.GetTimestamp()) return true;
        _withoutXattrs.Remove(KeyValuePair.Create(inode, expires));
        return false;
    }

    /// <summary>Notes that a query found no extended attributes on the inode, under the rule of <see cref="PutInode"/>.</summary>
    public void PutNoXattrs(long inode, long ticket)
    {
        if (!Enabled || Ticket() != ticket) return;
        PutCommittedNoXattrs(inode);
        if (Ticket() != ticket) _withoutXattrs.Remove(inode);
    }

    /// <summary>Notes that an inode this mount just created has no extended attributes.</summary>
    public void PutCommittedNoXattrs(long inode)
    {
        if (!Enabled) return;
        MakeRoom();
        _withoutXattrs.Set(inode, Stopwatch.GetTimestamp() + _attributeTicks);
    }

    /// <summary>
    /// The names of a directory whose every name this mount knows, taken before a change of this
    /// mount adds one (see <see cref="PutCreatedName"/>); null if not known.
    /// </summary>
    public KnownDirectory? KnownNames(long directory)
    {
        if (!_knownDirectories.TryGetValue(directory, out var known)) return null;
        if (known.Expires >= Stopwatch.GetTimestamp()) return known;
        _knownDirectories.Remove(KeyValuePair.Create(directory, known));
        return null;
    }

    /// <summary>Whether the name is known not to exist: every name of its directory is known, and it is not one.</summary>
    public bool IsAbsent(long parent, byte[] name) =>
        KnownNames(parent) is { } known && !known.Names.ContainsKey(new NameKey(parent, name));

    /// <summary>Knows every name of a directory this mount just created: none.</summary>
    public void PutCreatedDirectory(Inode directory)
    {
        if (!Enabled || _entryTicks <= 0) return;
        MakeRoom();
        _knownDirectories.Set(directory.Id, new KnownDirectory(new ConcurrentDictionary<NameKey, byte>(), directory.Ctime, Stopwatch.GetTimestamp() + _entryTicks));
    }

    /// <summary>
    /// A change of this mount added <paramref name="name"/> to a directory whose names were
    /// <paramref name="known"/> before it (taken with <paramref name="ticket"/>, a
    /// <see cref="RowTicket"/> of the directory, before the change): they stay known, with the
    /// name, if the change found the directory as known (<paramref name="ctimeFound"/>: nothing
    /// else changed it first) and no invalidation of it came since but the change's own.
    /// </summary>
    public void PutCreatedName(long parent, byte[] name, KnownDirectory known, RowTicket ticket, long ctimeFound, long ctimeLeft)
    {
        if (!Enabled || known.Ctime != ctimeFound || !OnlyOwnInvalidation(ticket)) return;
        // A full cache starts again without this directory: one of more names than the cache
        // holds is not worth knowing whole.
        if (MakeRoom()) return;
        // Shared with the record this replaces: a name is only ever added once it exists.
        known.Names[new NameKey(parent, name)] = 0;
        Interlocked.Increment(ref _knownNames);
        _knownDirectories.Set(parent, known with { Ctime = ctimeLeft, Expires = Stopwatch.GetTimestamp() + _entryTicks });
        if (!OnlyOwnInvalidation(ticket)) _knownDirectories.Remove(parent);
    }

    /// <summary>Drops what one change made stale.</summary>
    public void Invalidate(Invalidation change)
    {
        if (!Enabled) return;
        Interlocked.Increment(ref _generation);
        // Any change of a directory (of a name in it, or of its row) ends knowing all its names.
        _knownDirectories.Remove(change.Inode);
        if (change.Kind == 'e')
        {
            _names.Remove(new NameKey(change.Inode, change.Name!));
            return;
        }
        lock (_watchLock)
        {
            if (_watched.TryGetValue(change.Inode, out var watch)) watch.Invalidations++;
        }
        _inodes.Remove(change.Inode);
        // An xattr change invalidates the inode's row (its ctime moved).
        _withoutXattrs.Remove(change.Inode);
    }

    /// <summary>Drops an inode (deleted, or changed in a way no invalidation names).</summary>
    public void Forget(long inode) => Invalidate(Invalidation.Attributes(inode));

    /// <summary>
    /// Bounded memory: when full, start again (cheaper than tracking use for a cache that refills
    /// with one query per entry). Returns whether it did.
    /// </summary>
    private bool MakeRoom()
    {
        if (_inodes.Count < capacity && _names.Count < capacity && _withoutXattrs.Count < capacity && Volatile.Read(ref _knownNames) < capacity) return false;
        Interlocked.Increment(ref _generation);
        _inodes.Clear();
        _names.Clear();
        _withoutXattrs.Clear();
        _knownDirectories.Clear();
        Volatile.Write(ref _knownNames, 0);
        return true;
    }

    /// <summary>Invalidations of one inode's row while changes hold tickets of it (guarded by the watch lock).</summary>
    internal sealed class RowWatch
    {
        public int Holders;
        public long Invalidations;
    }

    /// <summary>See <see cref="WatchRow"/>.</summary>
    internal sealed class RowTicket(MetadataCache cache, long inode, RowWatch watch, long start) : IDisposable
    {
        private bool _disposed;

        public long Inode => inode;

        public RowWatch Watch => watch;

        /// <summary>The row's invalidations when the ticket was taken.</summary>
        public long Start => start;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            cache.Unwatch(this);
        }
    }

    /// <summary>
    /// Every name of a directory, as of its ctime <paramref name="Ctime"/>. The name set is
    /// shared by the records that follow each other as this mount adds names; counted (with
    /// drift: names of dropped records count until the next clear) to bound memory.
    /// </summary>
    internal sealed record KnownDirectory(ConcurrentDictionary<NameKey, byte> Names, long Ctime, long Expires);

    /// <summary>
    /// A concurrent map that keeps its own count of entries: ConcurrentDictionary.Count takes
    /// every lock of the map, and a count taken at every store made a directory listing wait
    /// on those locks for most of its time. The count may drift while a clear races with
    /// stores; it only bounds memory.
    /// </summary>
    private sealed class CountedMap<TKey, TValue>
        where TKey : notnull
    {
        private readonly ConcurrentDictionary<TKey, TValue> _map = new();
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public bool TryGetValue(TKey key, out TValue value) => _map.TryGetValue(key, out value!);

        public void Set(TKey key, TValue value)
        {
            if (_map.TryAdd(key, value)) Interlocked.Increment(ref _count);
            else _map[key] = value;
        }

        public void Remove(TKey key)
        {
            if (_map.TryRemove(key, out _)) Interlocked.Decrement(ref _count);
        }

        /// <summary>Removes the entry only if it still holds <paramref name="entry"/>'s value.</summary>
        public void Remove(KeyValuePair<TKey, TValue> entry)
        {
            if (_map.TryRemove(entry)) Interlocked.Decrement(ref _count);
        }

        public void Clear()
        {
            _map.Clear();
            Volatile.Write(ref _count, 0);
        }
    }

    /// <summary>A name in a directory, compared by bytes.</summary>
    internal readonly struct NameKey(long parent, byte[] name) : IEquatable<NameKey>
    {
        private readonly long _parent = parent;
        private readonly byte[] _name = name;

        public bool Equals(NameKey other) => _parent == other._parent && _name.AsSpan().SequenceEqual(other._name);

        public override bool Equals(object? obj) => obj is NameKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            hash.Add(_parent);
            hash.AddBytes(_name);
            return hash.ToHashCode();
        }
    }
}
