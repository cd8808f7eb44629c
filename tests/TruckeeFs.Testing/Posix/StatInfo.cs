namespace TruckeeFs.Testing.Posix;

/// <summary>The fields of <c>struct stat</c>, with times in nanoseconds since the epoch.</summary>
/// <param name="Dev">Device of the filesystem holding the file.</param>
/// <param name="Ino">Inode number.</param>
/// <param name="Nlink">Number of hard links.</param>
/// <param name="Mode">File type and permission bits (see <see cref="Sys.S_IFMT"/>).</param>
/// <param name="Uid">Owner.</param>
/// <param name="Gid">Group.</param>
/// <param name="Rdev">Device number of a device node (see <see cref="Sys.Major"/>, <see cref="Sys.Minor"/>).</param>
/// <param name="Size">Size in bytes; a symlink's is its target's length.</param>
/// <param name="BlkSize">Preferred I/O size.</param>
/// <param name="Blocks">Allocated 512-byte blocks.</param>
/// <param name="AtimeNs">Last access.</param>
/// <param name="MtimeNs">Last content change.</param>
/// <param name="CtimeNs">Last inode change.</param>
public readonly record struct StatInfo(
    ulong Dev,
    ulong Ino,
    ulong Nlink,
    uint Mode,
    uint Uid,
    uint Gid,
    ulong Rdev,
    long Size,
    long BlkSize,
    long Blocks,
    long AtimeNs,
    long MtimeNs,
    long CtimeNs)
{
    /// <summary>The file type bits alone (<see cref="Sys.S_IFREG"/>, <see cref="Sys.S_IFDIR"/>, ...).</summary>
    public uint FileType => Mode & Sys.S_IFMT;

    /// <summary>Permission, set-id and sticky bits alone.</summary>
    public uint Permissions => Mode & Sys.S_IPERM;

    /// <summary>True for a regular file.</summary>
    public bool IsRegularFile => FileType == Sys.S_IFREG;

    /// <summary>True for a directory.</summary>
    public bool IsDirectory => FileType == Sys.S_IFDIR;

    /// <summary>True for a symbolic link (only lstat reports one).</summary>
    public bool IsSymlink => FileType == Sys.S_IFLNK;
}

/// <summary>The fields of <c>struct statvfs</c>.</summary>
/// <param name="BlockSize">f_bsize: preferred I/O size.</param>
/// <param name="FragmentSize">f_frsize: the unit of the block counts.</param>
/// <param name="Blocks">f_blocks: size of the filesystem in f_frsize units.</param>
/// <param name="BlocksFree">f_bfree: free blocks.</param>
/// <param name="BlocksAvailable">f_bavail: free blocks for unprivileged users.</param>
/// <param name="Files">f_files: inodes.</param>
/// <param name="FilesFree">f_ffree: free inodes.</param>
/// <param name="FilesAvailable">f_favail: free inodes for unprivileged users.</param>
/// <param name="FsId">f_fsid.</param>
/// <param name="Flags">f_flag: ST_RDONLY (1), ST_NOSUID (2), ...</param>
/// <param name="NameMax">f_namemax: longest name.</param>
public readonly record struct StatVfsInfo(
    ulong BlockSize,
    ulong FragmentSize,
    ulong Blocks,
    ulong BlocksFree,
    ulong BlocksAvailable,
    ulong Files,
    ulong FilesFree,
    ulong FilesAvailable,
    ulong FsId,
    ulong Flags,
    ulong NameMax);

/// <summary>One directory entry as readdir returned it.</summary>
/// <param name="Name">The name's bytes, exactly as the filesystem stored them.</param>
/// <param name="Ino">d_ino.</param>
/// <param name="Type">d_type (<see cref="Sys.DT_REG"/>, ...; <see cref="Sys.DT_UNKNOWN"/> when the filesystem does not say).</param>
public sealed record DirectoryEntry(byte[] Name, ulong Ino, byte Type)
{
    /// <summary>True for the "." and ".." entries.</summary>
    public bool IsDotOrDotDot => Name is [(byte)'.'] or [(byte)'.', (byte)'.'];

    /// <summary>The name for messages (see <see cref="PosixPath.Escape"/>).</summary>
    public override string ToString() => PosixPath.Escape(Name);
}

/// <summary>A time for utimensat: seconds and nanoseconds, or one of the special values.</summary>
/// <param name="Seconds">tv_sec.</param>
/// <param name="Nanoseconds">tv_nsec, or <see cref="Sys.UTIME_NOW"/> / <see cref="Sys.UTIME_OMIT"/>.</param>
public readonly record struct Timespec(long Seconds, long Nanoseconds)
{
    /// <summary>"Set to the current time".</summary>
    public static Timespec Now => new(0, Sys.UTIME_NOW);

    /// <summary>"Leave unchanged".</summary>
    public static Timespec Omit => new(0, Sys.UTIME_OMIT);

    /// <summary>A time given in nanoseconds since the epoch (as <see cref="StatInfo"/> reports them).</summary>
    public static Timespec FromNanoseconds(long ns) => new(Math.DivRem(ns, 1_000_000_000L, out var rem) - (rem < 0 ? 1 : 0), rem < 0 ? rem + 1_000_000_000L : rem);
}
