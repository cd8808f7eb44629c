namespace TruckeeFs.Meta;

/// <summary>
/// Names, attributes, extended attributes and block maps of one filesystem.
///
/// Atomicity: each method is one transaction; either all of its effects happen or none.
/// POSIX checks that depend on the current state (EEXIST, ENOTEMPTY, EINVAL for a directory
/// moved into its own subtree, ...) are made inside that transaction, so concurrent callers,
/// in this process or on other hosts, cannot interleave between the check and the change.
/// Errors: namespace outcomes are returned as a positive errno (0 = success) because they are
/// normal results on the hot path; an exception means the database failed or a bug
/// (<see cref="MetaStoreException"/> for an unreachable or failing server, naming it).
/// Threading: every member is safe to call from many threads at once.
/// Times are nanoseconds since the Unix epoch; names are raw bytes (at most 255).
/// </summary>
public interface IMetaStore : ISessionStore, IDisposable
{
    /// <summary>A short description for logs and status, such as "sqlite /path" or "mysql host:3306/db".</summary>
    string Description { get; }

    /// <summary>The filesystem's identity, fixed at creation; prefixes coordination keys.</summary>
    string FilesystemId { get; }

    /// <summary>Write transactions this store object committed since it was opened (for status).</summary>
    long CommittedWrites { get; }

    Inode? GetInode(long inode);

    /// <summary>The inode a directory entry names, or null.</summary>
    Inode? Lookup(long parent, byte[] name);

    /// <summary>
    /// Creates a node (file, directory, symlink, device, FIFO, socket) named
    /// <paramref name="name"/> in <paramref name="parent"/>. Applies set-group-ID directory
    /// inheritance. ENOENT/ENOTDIR for a bad parent, EEXIST if the name is taken. A session in
    /// <paramref name="openedBy"/> (0: none) has the new node open from the same transaction
    /// (create(2) opens what it creates), as <see cref="ISessionStore.AddOpen"/> would record.
    /// <paramref name="directory"/> is the parent's row as the transaction left it, and
    /// <paramref name="directoryCtime"/> its ctime as the transaction found it (every change of a
    /// directory's names sets its ctime: equal to a ctime seen earlier, nothing else changed them since).
    /// <paramref name="knownDirectory"/>, the parent's row as the caller last knew it, spares the
    /// store reading it first while the parent's ctime is still the one known.
    /// </summary>
    int Create(long parent, byte[] name, NewNode node, long now, out Inode created, out Inode directory, out long directoryCtime, long openedBy = 0, Inode? knownDirectory = null);

    /// <summary>As the other overload, without the parent's row.</summary>
    int Create(long parent, byte[] name, NewNode node, long now, out Inode created, long openedBy = 0);

    /// <summary>A new name for an existing non-directory (EPERM for directories).</summary>
    int Link(long inode, long newParent, byte[] newName, long now, out Inode linked);

    /// <summary>
    /// Removes a non-directory's name; <paramref name="unlinked"/> has the inode's new link count,
    /// <paramref name="directory"/> the parent's row as the transaction left it. With
    /// <paramref name="reclaim"/>, an inode left without names is deleted in the same transaction
    /// (as <see cref="DeleteInode"/>) if it is <see cref="Reclaim.Inode"/> and no session other
    /// than <see cref="Reclaim.Session"/> has it open; then <paramref name="unreferenced"/> holds
    /// the caps it freed (null when the inode was kept).
    /// </summary>
    int Unlink(long parent, byte[] name, long now, Reclaim? reclaim, out Inode? unlinked, out Inode? directory, out IReadOnlyList<string>? unreferenced);

    /// <summary>As the other overload, without the parent's row.</summary>
    int Unlink(long parent, byte[] name, long now, out Inode? unlinked);

    /// <summary>
    /// Removes an empty directory (ENOTEMPTY otherwise); <paramref name="removed"/> has link count
    /// 0, <paramref name="directory"/> is the parent's row as the transaction left it.
    /// </summary>
    int RemoveDirectory(long parent, byte[] name, long now, out Inode? removed, out Inode? directory);

    /// <summary>As the other overload, without the parent's row.</summary>
    int RemoveDirectory(long parent, byte[] name, long now, out Inode? removed);

    /// <summary>
    /// Renames atomically, replacing a target file or empty directory, with
    /// <see cref="RenameFlags"/> NoReplace and Exchange. <paramref name="replaced"/> is the inode
    /// whose name was replaced (its link count already decremented), if any.
    /// </summary>
    int Rename(long parent, byte[] name, long newParent, byte[] newName, RenameFlags flags, long now, out Inode? replaced);

    /// <summary>Changes the attributes <paramref name="change"/> names; ctime becomes <paramref name="now"/>.</summary>
    int SetAttributes(long inode, AttributeChange change, long now, out Inode updated);

    /// <summary>
    /// Up to <paramref name="limit"/> entries of a directory whose cookie is greater than
    /// <paramref name="afterCookie"/>, in cookie order. Cookies are stable while the directory
    /// changes: an entry keeps its cookie until removed, and new entries get larger ones.
    /// </summary>
    IReadOnlyList<DirectoryEntry> ReadDirectory(long directory, long afterCookie, int limit);

    /// <summary>The parent of a directory (the root is its own parent).</summary>
    long ParentOf(long directory);

    /// <summary>Every name an inode has: (directory, name) pairs, several for a hard-linked file, none once unlinked.</summary>
    IReadOnlyList<(long Parent, byte[] Name)> NamesOf(long inode);

    int GetXattr(long inode, byte[] name, out byte[] value);
    /// <summary>Sets an attribute; EEXIST/ENODATA as <paramref name="flags"/> say, ENOSPC for a new name the 64 KiB list listxattr(2) returns has no room for.</summary>
    int SetXattr(long inode, byte[] name, byte[] value, XattrFlags flags, long now);
    int ListXattrs(long inode, out IReadOnlyList<byte[]> names);
    int RemoveXattr(long inode, byte[] name, long now);

    /// <summary>The block map of a file, in index order (holes are absent).</summary>
    IReadOnlyList<BlockRef> GetBlocks(long inode);

    /// <summary>A file's row (null if none) and block map, as of one moment.</summary>
    (Inode? Row, IReadOnlyList<BlockRef> Blocks) GetInodeWithBlocks(long inode);

    /// <summary>
    /// Commits a complete new version of a file: <see cref="ContentCommit.Blocks"/> becomes its
    /// whole block map (blocks absent from it are holes or beyond the end), with size and times;
    /// bumps the content version and adjusts the reference count of every cap involved. A commit
    /// never merges with the map it replaces, so concurrent commits of one file from several
    /// mounts are ordered by the database (the last one wins whole) and never interleave blocks
    /// of two versions. Returns the caps no longer referenced by anything, for the caller to
    /// delete from the content store.
    /// </summary>
    int CommitContent(long inode, ContentCommit commit, out Inode updated, out IReadOnlyList<string> unreferenced);

    /// <summary>True if no block map references <paramref name="cap"/> (so its object may be deleted).</summary>
    bool IsUnreferenced(string cap);

    /// <summary>
    /// Deletes an inode whose link count is 0 (its blocks, xattrs and row); a no-op returning
    /// ENOENT if it is gone, EBUSY if it has links again or a session has it open.
    /// </summary>
    int DeleteInode(long inode, out IReadOnlyList<string> unreferenced);

    /// <summary>Inodes with no names left that no session has open (unlinked while open when a mount ended).</summary>
    IReadOnlyList<long> OrphanInodes();

    /// <summary>Makes every committed transaction durable on stable storage (fsync).</summary>
    void Sync();

    /// <summary>Counts for statfs.</summary>
    FilesystemUsage Usage();

    // ---- Operations: self-test, status, fsck and gc (SqlMetaStore.Check.cs) ----
    // Read methods see one consistent snapshot each; each repair is one transaction that
    // re-checks its finding inside it, so repairing a filesystem that changed since the check
    // does no harm.

    /// <summary>Writes a probe row, reads it back and deletes it; throws <see cref="MetaStoreException"/> when the database cannot do that.</summary>
    void ProbeRoundTrip();

    /// <summary>Directory entries naming an inode that does not exist, or in a parent that is missing or not a directory.</summary>
    IReadOnlyList<DirentRecord> DanglingEntries();

    /// <summary>Inodes other than the root with a link count above 0 and no name: lost files and directories.</summary>
    IReadOnlyList<long> LostInodes();

    /// <summary>Named inodes whose link count differs from their names (files) or 2 + subdirectories (directories).</summary>
    IReadOnlyList<LinkCountRecord> LinkCountMismatches();

    /// <summary>Inodes that block map or extended attribute rows belong to but that do not exist.</summary>
    IReadOnlyList<long> StrayRowInodes();

    /// <summary>Every cap the contents table records or a block map uses, with its recorded reference count and its actual uses.</summary>
    IReadOnlyList<CapUse> CapUses();

    /// <summary>The blocks (inode, index) that use <paramref name="cap"/>.</summary>
    IReadOnlyList<(long Inode, long Index)> BlocksUsing(string cap);

    /// <summary>Deletes the directory entry <paramref name="id"/> if it is still dangling; returns whether it did.</summary>
    bool RemoveDanglingEntry(long id);

    /// <summary>Names a lost inode <paramref name="name"/> in <paramref name="directory"/> if it is still lost; returns whether it did.</summary>
    bool AdoptLostInode(long inode, long directory, byte[] name);

    /// <summary>Sets an inode's link count to what its names and subdirectories say; returns the new count, or null if nothing changed.</summary>
    long? FixLinkCount(long inode);

    /// <summary>Deletes block map and extended attribute rows of <paramref name="inode"/> if it does not exist; returns how many.</summary>
    int RemoveStrayRows(long inode);

    /// <summary>
    /// Makes the contents row of <paramref name="cap"/> count its uses: records it when blocks use
    /// it without a row, deletes the row when nothing uses it. Returns whether the object is now
    /// unreferenced (for the caller to delete).
    /// </summary>
    bool FixReferenceCount(string cap);

    /// <summary>Turns every block using <paramref name="cap"/> (an object the store has lost) into a hole and forgets the cap; returns the blocks changed.</summary>
    IReadOnlyList<(long Inode, long Index)> PunchBlocksUsing(string cap);
}

/// <summary>A directory entry row.</summary>
public sealed record DirentRecord(long Id, long Parent, byte[] Name, long Inode);

/// <summary>An inode whose link count is <see cref="Nlink"/> but should be <see cref="Expected"/>.</summary>
public sealed record LinkCountRecord(long Inode, long Mode, long Nlink, long Expected);

/// <summary>
/// A cap and how it is used: <see cref="Refs"/> as the contents table records it (null without a
/// row), <see cref="Uses"/> the block map entries naming it.
/// </summary>
public sealed record CapUse(string Cap, long Length, long? Refs, long Uses);

/// <summary>An inode row. Mode includes the file type bits (S_IFMT).</summary>
public sealed class Inode
{
    public long Id { get; set; }
    public long Mode { get; set; }
    public long Uid { get; set; }
    public long Gid { get; set; }
    public long Nlink { get; set; }
    public long Size { get; set; }
    public long Atime { get; set; }
    public long Mtime { get; set; }
    public long Ctime { get; set; }
    public long Rdev { get; set; }
    public byte[]? Target { get; set; }
    /// <summary>The content version: bumped by every content commit, so a mount can tell whether its block map is current.</summary>
    public long Version { get; set; }
    /// <summary>Bytes of the blocks the file has (holes have none): what st_blocks counts, and du and sparse-aware copies read.</summary>
    public long Allocated { get; set; }

    public bool IsDirectory => (Mode & FileModes.TypeMask) == FileModes.Directory;
    public bool IsRegular => (Mode & FileModes.TypeMask) == FileModes.Regular;
    public bool IsSymlink => (Mode & FileModes.TypeMask) == FileModes.Symlink;

    public Inode Clone() => (Inode)MemberwiseClone();
}

/// <summary>An unlink may delete <paramref name="Inode"/> with its last name: the caller has no handle of it open (its <paramref name="Session"/>'s reference is stale).</summary>
public sealed record Reclaim(long Inode, long Session);

/// <summary>What <see cref="IMetaStore.Create"/> makes. Mode includes the file type bits.</summary>
public readonly record struct NewNode(long Mode, long Uid, long Gid, long Rdev = 0, byte[]? Target = null);

public readonly record struct DirectoryEntry(long Cookie, byte[] Name, Inode Inode);

/// <summary>A block of a file: index, cap of its immutable object and the object's length.</summary>
public readonly record struct BlockRef(long Index, string? Cap, long Length);

/// <summary>
/// A complete version of a file's contents: every block that is not a hole (caps not null), size
/// and times, and the attribute changes made while it was written (<see cref="Attributes"/>:
/// mode, owner and atime; its Mtime is not used, <see cref="Mtime"/> is the file's).
/// </summary>
public sealed record ContentCommit(IReadOnlyList<BlockRef> Blocks, long Size, long Mtime, long Ctime)
{
    public AttributeChange Attributes { get; init; } = AttributeChange.None;

    /// <summary>
    /// Written on a file that had no committed version (version 0) as far as the mount knew: the
    /// store may then skip reading the row and block map first, as long as the row says so too.
    /// </summary>
    public bool IsFirst { get; init; }
}

public readonly record struct FilesystemUsage(long Inodes, long Bytes);

/// <summary>Attribute changes; null members are left alone. Mode carries permission bits only (the file type never changes).</summary>
public sealed record AttributeChange
{
    public static readonly AttributeChange None = new();

    public long? Mode { get; init; }
    public long? Uid { get; init; }
    public long? Gid { get; init; }
    public long? Atime { get; init; }
    public long? Mtime { get; init; }

    public bool IsEmpty => Mode is null && Uid is null && Gid is null && Atime is null && Mtime is null;

    /// <summary>This change followed by <paramref name="later"/>: what both set, the later one winning.</summary>
    public AttributeChange Then(AttributeChange later) => new()
    {
        Mode = later.Mode ?? Mode,
        Uid = later.Uid ?? Uid,
        Gid = later.Gid ?? Gid,
        Atime = later.Atime ?? Atime,
        Mtime = later.Mtime ?? Mtime,
    };

    /// <summary>Applies the change to <paramref name="row"/> (all but ctime).</summary>
    public void ApplyTo(Inode row)
    {
        if (Mode is { } mode) row.Mode = (row.Mode & FileModes.TypeMask) | (mode & FileModes.PermissionMask);
        if (Uid is { } uid) row.Uid = uid;
        if (Gid is { } gid) row.Gid = gid;
        if (Atime is { } atime) row.Atime = atime;
        if (Mtime is { } mtime) row.Mtime = mtime;
    }
}

[Flags]
public enum RenameFlags
{
    None = 0,
    NoReplace = 1,
    Exchange = 2,
}

[Flags]
public enum XattrFlags
{
    None = 0,
    Create = 1,
    Replace = 2,
}

/// <summary>The metadata server is unreachable or failed; the message names it.</summary>
public sealed class MetaStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>File type and permission bits as in &lt;sys/stat.h&gt;.</summary>
public static class FileModes
{
    public const long TypeMask = 0xF000;
    public const long Socket = 0xC000;
    public const long Symlink = 0xA000;
    public const long Regular = 0x8000;
    public const long BlockDevice = 0x6000;
    public const long Directory = 0x4000;
    public const long CharDevice = 0x2000;
    public const long Fifo = 0x1000;
    public const long SetUid = 0x800;
    public const long SetGid = 0x400;
    public const long Sticky = 0x200;
    public const long GroupExecute = 0x8;
    public const long PermissionMask = 0xFFF;
}
