using System.Runtime.InteropServices;

namespace TruckeeFs.Fuse;

/// <summary>
/// Open-file parameters: a copy of libfuse's <c>struct fuse_file_info</c>, laid out exactly like
/// it (40 bytes) so that callbacks copy it in and replies hand it back without conversion.
/// Set <see cref="Handle"/> and the reply flags in open/opendir/create and answer with
/// <see cref="FuseRequest.ReplyOpen"/> or <see cref="FuseRequest.ReplyCreate"/>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct FuseFileInfo
{
    // The C bitfield word at offset 4: GCC on x86-64 allocates bitfields from the least
    // significant bit. A wrong bit here fails silently (Tmds.Fuse's keep_cache bug), so the
    // layout tests pin each one.
    private const uint WritePageBit = 1u << 0;
    private const uint DirectIoBit = 1u << 1;
    private const uint KeepCacheBit = 1u << 2;
    private const uint FlushBit = 1u << 3;
    private const uint NonSeekableBit = 1u << 4;
    private const uint FlockReleaseBit = 1u << 5;
    private const uint CacheReaddirBit = 1u << 6;
    private const uint NoFlushBit = 1u << 7;

    [FieldOffset(0)] private int _flags;
    [FieldOffset(4)] private uint _bits;
    [FieldOffset(16)] private ulong _handle;
    [FieldOffset(24)] private ulong _lockOwner;

    /// <summary>The open(2) flags (O_ACCMODE, O_APPEND, O_TRUNC, ...); valid in open, create and release.</summary>
    public int Flags { readonly get => _flags; set => _flags = value; }

    /// <summary>The filesystem's handle (<c>fh</c>), chosen in open/opendir/create and passed back later.</summary>
    public ulong Handle { readonly get => _handle; set => _handle = value; }

    /// <summary>Set in open: bypass the page cache for this file.</summary>
    public bool DirectIo { readonly get => Get(DirectIoBit); set => Set(DirectIoBit, value); }

    /// <summary>Set in open: keep cached data from a previous open instead of invalidating it.</summary>
    public bool KeepCache { readonly get => Get(KeepCacheBit); set => Set(KeepCacheBit, value); }

    /// <summary>Set in open: the file is not seekable.</summary>
    public bool NonSeekable { readonly get => Get(NonSeekableBit); set => Set(NonSeekableBit, value); }

    /// <summary>Set in opendir: let the kernel cache the entries readdir returned.</summary>
    public bool CacheReaddir { readonly get => Get(CacheReaddirBit); set => Set(CacheReaddirBit, value); }

    /// <summary>Set in open: the kernel need not send flush on close.</summary>
    public bool NoFlush { readonly get => Get(NoFlushBit); set => Set(NoFlushBit, value); }

    /// <summary>In release: the release is also a flush.</summary>
    public bool Flush { readonly get => Get(FlushBit); set => Set(FlushBit, value); }

    /// <summary>In release: flock locks held by <see cref="LockOwner"/> must be released.</summary>
    public bool FlockRelease { readonly get => Get(FlockReleaseBit); set => Set(FlockReleaseBit, value); }

    /// <summary>In write: the write comes from the page cache (writeback), so the request's context is not the writer's.</summary>
    public readonly bool WritePage => Get(WritePageBit);

    /// <summary>The lock owner; valid in flush, release with <see cref="FlockRelease"/>, and the lock operations.</summary>
    public ulong LockOwner { readonly get => _lockOwner; set => _lockOwner = value; }

    private readonly bool Get(uint bit) => (_bits & bit) != 0;

    private void Set(uint bit, bool value) => _bits = value ? _bits | bit : _bits & ~bit;
}

/// <summary>
/// File attributes, laid out exactly as x86-64 glibc <c>struct stat</c> (144 bytes) so that
/// libfuse reads and writes it in place. <c>st_dev</c> is left out: the kernel ignores it.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
public struct FuseStat
{
    /// <summary><c>st_ino</c>.</summary>
    [FieldOffset(8)] public ulong Inode;
    /// <summary><c>st_nlink</c>.</summary>
    [FieldOffset(16)] public ulong Nlink;
    /// <summary><c>st_mode</c>: file type and permission bits.</summary>
    [FieldOffset(24)] public uint Mode;
    /// <summary><c>st_uid</c>.</summary>
    [FieldOffset(28)] public uint Uid;
    /// <summary><c>st_gid</c>.</summary>
    [FieldOffset(32)] public uint Gid;
    /// <summary><c>st_rdev</c>: device number of a device node.</summary>
    [FieldOffset(40)] public ulong Rdev;
    /// <summary><c>st_size</c> in bytes.</summary>
    [FieldOffset(48)] public long Size;
    /// <summary><c>st_blksize</c>: preferred I/O size.</summary>
    [FieldOffset(56)] public long BlockSize;
    /// <summary><c>st_blocks</c>: allocated 512-byte blocks.</summary>
    [FieldOffset(64)] public long Blocks;
    /// <summary><c>st_atim.tv_sec</c>.</summary>
    [FieldOffset(72)] public long AtimeSec;
    /// <summary><c>st_atim.tv_nsec</c>.</summary>
    [FieldOffset(80)] public long AtimeNsec;
    /// <summary><c>st_mtim.tv_sec</c>.</summary>
    [FieldOffset(88)] public long MtimeSec;
    /// <summary><c>st_mtim.tv_nsec</c>.</summary>
    [FieldOffset(96)] public long MtimeNsec;
    /// <summary><c>st_ctim.tv_sec</c>.</summary>
    [FieldOffset(104)] public long CtimeSec;
    /// <summary><c>st_ctim.tv_nsec</c>.</summary>
    [FieldOffset(112)] public long CtimeNsec;
}

/// <summary>
/// A lookup answer, laid out as <c>struct fuse_entry_param</c> (176 bytes). The kernel counts
/// one lookup of <see cref="Inode"/> per successful reply carrying it (forget gives them back).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseEntryParam
{
    /// <summary>The inode; 0 means a negative entry (cached "does not exist").</summary>
    public ulong Inode;
    /// <summary>Distinguishes reuses of an inode number (NFS export).</summary>
    public ulong Generation;
    /// <summary>The inode's attributes.</summary>
    public FuseStat Attr;
    /// <summary>How long the kernel may cache <see cref="Attr"/>, in seconds.</summary>
    public double AttrTimeout;
    /// <summary>How long the kernel may cache the name, in seconds.</summary>
    public double EntryTimeout;
}

/// <summary>Filesystem statistics, laid out as x86-64 glibc <c>struct statvfs</c> (112 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
public struct FuseStatVfs
{
    /// <summary><c>f_bsize</c>: preferred block size.</summary>
    [FieldOffset(0)] public ulong BlockSize;
    /// <summary><c>f_frsize</c>: the unit of the block counts.</summary>
    [FieldOffset(8)] public ulong FragmentSize;
    /// <summary><c>f_blocks</c>: size of the filesystem in <see cref="FragmentSize"/> units.</summary>
    [FieldOffset(16)] public ulong Blocks;
    /// <summary><c>f_bfree</c>.</summary>
    [FieldOffset(24)] public ulong BlocksFree;
    /// <summary><c>f_bavail</c>: free blocks for unprivileged users.</summary>
    [FieldOffset(32)] public ulong BlocksAvailable;
    /// <summary><c>f_files</c>: number of inodes.</summary>
    [FieldOffset(40)] public ulong Files;
    /// <summary><c>f_ffree</c>.</summary>
    [FieldOffset(48)] public ulong FilesFree;
    /// <summary><c>f_favail</c>: free inodes for unprivileged users.</summary>
    [FieldOffset(56)] public ulong FilesAvailable;
    /// <summary><c>f_fsid</c>; the kernel ignores it for FUSE.</summary>
    [FieldOffset(64)] public ulong FsId;
    /// <summary><c>f_flag</c>; the kernel ignores it for FUSE.</summary>
    [FieldOffset(72)] public ulong Flags;
    /// <summary><c>f_namemax</c>: longest name in bytes.</summary>
    [FieldOffset(80)] public ulong NameMax;
}

/// <summary>A POSIX record lock, laid out as x86-64 <c>struct flock</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct FuseLock
{
    /// <summary><c>l_type</c>: F_RDLCK (0), F_WRLCK (1) or F_UNLCK (2).</summary>
    [FieldOffset(0)] public short Type;
    /// <summary><c>l_whence</c>: SEEK_SET, SEEK_CUR or SEEK_END.</summary>
    [FieldOffset(2)] public short Whence;
    /// <summary><c>l_start</c>.</summary>
    [FieldOffset(8)] public long Start;
    /// <summary><c>l_len</c>; 0 means "to the end of the file".</summary>
    [FieldOffset(16)] public long Length;
    /// <summary><c>l_pid</c>: the holder of a conflicting lock (getlk).</summary>
    [FieldOffset(24)] public int Pid;
}

/// <summary>One entry of a batch forget, laid out as <c>struct fuse_forget_data</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct FuseForgetData
{
    private readonly ulong _inode;
    private readonly ulong _lookupCount;

    /// <summary>Creates an entry.</summary>
    public FuseForgetData(ulong inode, ulong lookupCount) => (_inode, _lookupCount) = (inode, lookupCount);

    /// <summary>The inode whose lookups are given back.</summary>
    public ulong Inode => _inode;

    /// <summary>How many lookups the kernel gives back.</summary>
    public ulong LookupCount => _lookupCount;
}

/// <summary>The caller of a request, as <c>struct fuse_ctx</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct FuseContext
{
    private readonly uint _uid;
    private readonly uint _gid;
    private readonly int _pid;
    private readonly uint _umask;

    /// <summary>Effective user id of the calling process.</summary>
    public uint Uid => _uid;

    /// <summary>Effective group id of the calling process.</summary>
    public uint Gid => _gid;

    /// <summary>Thread id of the caller (0 for writeback and other kernel-initiated requests).</summary>
    public int Pid => _pid;

    /// <summary>The caller's umask (meaningful in create, mkdir and mknod).</summary>
    public uint Umask => _umask;
}

/// <summary>Which attributes a setattr changes (<c>FUSE_SET_ATTR_*</c>, libfuse 3.14).</summary>
[Flags]
public enum FuseSetAttrFlags
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>Mode bits.</summary>
    Mode = 1 << 0,
    /// <summary>Owner.</summary>
    Uid = 1 << 1,
    /// <summary>Group.</summary>
    Gid = 1 << 2,
    /// <summary>Size (truncate).</summary>
    Size = 1 << 3,
    /// <summary>Access time, from the attributes.</summary>
    Atime = 1 << 4,
    /// <summary>Modification time, from the attributes.</summary>
    Mtime = 1 << 5,
    /// <summary>Access time, to now.</summary>
    AtimeNow = 1 << 7,
    /// <summary>Modification time, to now.</summary>
    MtimeNow = 1 << 8,
    /// <summary>Force the change (libfuse-internal).</summary>
    Force = 1 << 9,
    /// <summary>Change time, from the attributes.</summary>
    Ctime = 1 << 10,
    /// <summary>Clear set-user-id.</summary>
    KillSuid = 1 << 11,
    /// <summary>Clear set-group-id.</summary>
    KillSgid = 1 << 12,
    /// <summary>A file handle accompanies the request.</summary>
    File = 1 << 13,
    /// <summary>Clear privileges (suid, sgid, capabilities).</summary>
    KillPriv = 1 << 14,
    /// <summary>The change comes from open(O_TRUNC).</summary>
    Open = 1 << 15,
    /// <summary>Times were set explicitly.</summary>
    TimesSet = 1 << 16,
    /// <summary>Touch.</summary>
    Touch = 1 << 17,
}

/// <summary>Connection capabilities (<c>FUSE_CAP_*</c> in libfuse 3.14's fuse_common.h).</summary>
[Flags]
public enum FuseCapabilities : uint
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>Asynchronous read requests.</summary>
    AsyncRead = 1u << 0,
    /// <summary>POSIX file locks (getlk/setlk).</summary>
    PosixLocks = 1u << 1,
    /// <summary>open with O_TRUNC handled by the filesystem.</summary>
    AtomicOTrunc = 1u << 3,
    /// <summary>Lookups of "." and "..".</summary>
    ExportSupport = 1u << 4,
    /// <summary>The kernel does not apply the umask to create modes.</summary>
    DontMask = 1u << 6,
    /// <summary>splice to the device for replies.</summary>
    SpliceWrite = 1u << 7,
    /// <summary>Move pages with splice.</summary>
    SpliceMove = 1u << 8,
    /// <summary>splice from the device for requests.</summary>
    SpliceRead = 1u << 9,
    /// <summary>BSD flock locks.</summary>
    FlockLocks = 1u << 10,
    /// <summary>ioctl on directories.</summary>
    IoctlDir = 1u << 11,
    /// <summary>The kernel invalidates cached data when mtime or size change.</summary>
    AutoInvalData = 1u << 12,
    /// <summary>readdirplus.</summary>
    ReaddirPlus = 1u << 13,
    /// <summary>Adaptive readdirplus.</summary>
    ReaddirPlusAuto = 1u << 14,
    /// <summary>Asynchronous direct I/O.</summary>
    AsyncDio = 1u << 15,
    /// <summary>Writeback caching of writes.</summary>
    WritebackCache = 1u << 16,
    /// <summary>open may fail with ENOSYS to mean "always succeeds".</summary>
    NoOpenSupport = 1u << 17,
    /// <summary>
    /// Parallel lookups and readdirs in one directory. libfuse 3.14 reports it wanted but never
    /// passes it to the kernel (fixed upstream by libfuse PR #861, after 3.14), so with 3.14 the
    /// kernel serializes them per directory whatever Want says.
    /// </summary>
    ParallelDirops = 1u << 18,
    /// <summary>POSIX ACLs.</summary>
    PosixAcl = 1u << 19,
    /// <summary>The filesystem clears suid/sgid/capabilities on write, chown and truncate.</summary>
    HandleKillpriv = 1u << 20,
    /// <summary>The kernel caches readlink answers.</summary>
    CacheSymlinks = 1u << 23,
    /// <summary>opendir may fail with ENOSYS to mean "always succeeds".</summary>
    NoOpendirSupport = 1u << 24,
    /// <summary>The filesystem invalidates cached data explicitly.</summary>
    ExplicitInvalData = 1u << 25,
    /// <summary>Entries can be expired without being invalidated.</summary>
    ExpireOnly = 1u << 26,
}

/// <summary>A FUSE session could not be created or mounted.</summary>
public class FuseException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FuseException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FuseException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public FuseException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
