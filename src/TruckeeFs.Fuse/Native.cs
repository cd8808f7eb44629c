using System.Buffers;
using System.Runtime.InteropServices;

namespace TruckeeFs.Fuse;

/// <summary>
/// Every native call and native-only struct of the binding, checked against libfuse 3.14's
/// fuse_lowlevel.h, fuse_common.h and fuse_opt.h (x86-64). Layouts are pinned by LayoutTests.
/// </summary>
internal static unsafe partial class Native
{
    private const string Fuse = "libfuse3.so.3";
    private const string Libc = "libc";

    /// <summary>Names up to NAME_MAX (255) plus the NUL fit on the stack.</summary>
    internal const int NameScratch = 256;

    // ---- session ----

    [LibraryImport(Fuse)]
    internal static partial nint fuse_session_new(FuseArgs* args, LowLevelOps* op, nuint opSize, nint userdata);

    [LibraryImport(Fuse, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int fuse_session_mount(nint se, string mountpoint);

    [LibraryImport(Fuse)]
    internal static partial void fuse_session_unmount(nint se);

    [LibraryImport(Fuse)]
    internal static partial void fuse_session_destroy(nint se);

    [LibraryImport(Fuse)]
    internal static partial void fuse_session_exit(nint se);

    /// <summary>
    /// The plain symbol resolves to the default version, FUSE_3.12: the variant taking the opaque
    /// config of <see cref="fuse_loop_cfg_create"/>.
    /// </summary>
    [LibraryImport(Fuse)]
    internal static partial int fuse_session_loop_mt(nint se, nint config);

    [LibraryImport(Fuse)]
    internal static partial nint fuse_loop_cfg_create();

    [LibraryImport(Fuse)]
    internal static partial void fuse_loop_cfg_destroy(nint config);

    [LibraryImport(Fuse)]
    internal static partial void fuse_loop_cfg_set_max_threads(nint config, uint value);

    [LibraryImport(Fuse)]
    internal static partial void fuse_loop_cfg_set_clone_fd(nint config, uint value);

    [LibraryImport(Fuse)]
    internal static partial void fuse_opt_free_args(FuseArgs* args);

    // ---- requests ----

    // Both only read fields of the request: no lock, no blocking, so no GC transition needed.
    [LibraryImport(Fuse), SuppressGCTransition]
    internal static partial nint fuse_req_userdata(nint req);

    [LibraryImport(Fuse), SuppressGCTransition]
    internal static partial FuseContext* fuse_req_ctx(nint req);

    [LibraryImport(Fuse)]
    internal static partial int fuse_req_interrupted(nint req);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_err(nint req, int err);

    [LibraryImport(Fuse)]
    internal static partial void fuse_reply_none(nint req);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_entry(nint req, FuseEntryParam* e);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_create(nint req, FuseEntryParam* e, FuseFileInfo* fi);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_attr(nint req, FuseStat* attr, double attrTimeout);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_readlink(nint req, byte* link);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_open(nint req, FuseFileInfo* fi);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_write(nint req, nuint count);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_buf(nint req, byte* buf, nuint size);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_statfs(nint req, FuseStatVfs* stbuf);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_xattr(nint req, nuint count);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_lock(nint req, FuseLock* lockInfo);

    [LibraryImport(Fuse)]
    internal static partial int fuse_reply_lseek(nint req, long off);

    [LibraryImport(Fuse)]
    internal static partial nuint fuse_add_direntry(nint req, byte* buf, nuint bufsize, byte* name, FuseStat* stbuf, long off);

    [LibraryImport(Fuse)]
    internal static partial nuint fuse_add_direntry_plus(nint req, byte* buf, nuint bufsize, byte* name, FuseEntryParam* e, long off);

    // ---- notifications ----

    [LibraryImport(Fuse)]
    internal static partial int fuse_lowlevel_notify_inval_inode(nint se, ulong ino, long off, long len);

    /// <summary>libfuse sends namelen + 1 bytes: the name must be NUL-terminated.</summary>
    [LibraryImport(Fuse)]
    internal static partial int fuse_lowlevel_notify_inval_entry(nint se, ulong parent, byte* name, nuint namelen);

    /// <summary>libfuse sends namelen + 1 bytes: the name must be NUL-terminated.</summary>
    [LibraryImport(Fuse)]
    internal static partial int fuse_lowlevel_notify_delete(nint se, ulong parent, ulong child, byte* name, nuint namelen);

    // ---- libc ----

    internal const int MNT_FORCE = 1;
    internal const int MNT_DETACH = 2;

    [LibraryImport(Libc, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);

    [LibraryImport(Libc)]
    internal static partial uint geteuid();

    /// <summary>
    /// Copies <paramref name="value"/> into <paramref name="scratch"/> (or, when too long, into a
    /// rented array the caller gives back with <see cref="Return"/>) followed by a NUL.
    /// </summary>
    internal static Span<byte> NulTerminate(ReadOnlySpan<byte> value, Span<byte> scratch, out byte[]? rented)
    {
        rented = null;
        var target = value.Length < scratch.Length ? scratch : (rented = ArrayPool<byte>.Shared.Rent(value.Length + 1));
        value.CopyTo(target);
        target[value.Length] = 0;
        return target[..(value.Length + 1)];
    }

    internal static void Return(byte[]? rented)
    {
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>A C string as a span, without its NUL.</summary>
    internal static ReadOnlySpan<byte> Span(byte* cString) => MemoryMarshal.CreateReadOnlySpanFromNullTerminated(cString);
}

/// <summary><c>struct fuse_args</c> (fuse_opt.h).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseArgs
{
    public int Argc;
    public byte** Argv;
    public int Allocated;
}

/// <summary><c>struct fuse_conn_info</c> (fuse_common.h): ten unsigned fields, then 22 reserved.</summary>
[StructLayout(LayoutKind.Sequential, Size = 128)]
internal struct ConnInfo
{
    public uint ProtoMajor;
    public uint ProtoMinor;
    public uint MaxWrite;
    public uint MaxRead;
    public uint MaxReadahead;
    public uint Capable;
    public uint Want;
    public uint MaxBackground;
    public uint CongestionThreshold;
    public uint TimeGran;
}

/// <summary>
/// <c>struct fuse_lowlevel_ops</c> (fuse_lowlevel.h, 3.14): 44 function pointers. Each field's
/// type is the C signature, so assigning a callback of the wrong shape does not compile. The
/// slots this binding never fills (bmap, ioctl, poll, write_buf, retrieve_reply) have no field.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 44 * P)]
internal unsafe struct LowLevelOps
{
    private const int P = 8;

    [FieldOffset(0 * P)] public delegate* unmanaged[Cdecl]<nint, ConnInfo*, void> Init;
    [FieldOffset(1 * P)] public delegate* unmanaged[Cdecl]<nint, void> Destroy;
    [FieldOffset(2 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, void> Lookup;
    [FieldOffset(3 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, ulong, void> Forget;
    [FieldOffset(4 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, void> GetAttr;
    [FieldOffset(5 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseStat*, int, FuseFileInfo*, void> SetAttr;
    [FieldOffset(6 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, void> ReadLink;
    [FieldOffset(7 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, uint, ulong, void> MkNod;
    [FieldOffset(8 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, uint, void> MkDir;
    [FieldOffset(9 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, void> Unlink;
    [FieldOffset(10 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, void> RmDir;
    [FieldOffset(11 * P)] public delegate* unmanaged[Cdecl]<nint, byte*, ulong, byte*, void> Symlink;
    [FieldOffset(12 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, ulong, byte*, uint, void> Rename;
    [FieldOffset(13 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, ulong, byte*, void> Link;
    [FieldOffset(14 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, void> Open;
    [FieldOffset(15 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, nuint, long, FuseFileInfo*, void> Read;
    [FieldOffset(16 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, nuint, long, FuseFileInfo*, void> Write;
    [FieldOffset(17 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, void> Flush;
    [FieldOffset(18 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, void> Release;
    [FieldOffset(19 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, int, FuseFileInfo*, void> Fsync;
    [FieldOffset(20 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, void> OpenDir;
    [FieldOffset(21 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, nuint, long, FuseFileInfo*, void> ReadDir;
    [FieldOffset(22 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, void> ReleaseDir;
    [FieldOffset(23 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, int, FuseFileInfo*, void> FsyncDir;
    [FieldOffset(24 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, void> StatFs;
    [FieldOffset(25 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, byte*, nuint, int, void> SetXattr;
    [FieldOffset(26 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, nuint, void> GetXattr;
    [FieldOffset(27 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, nuint, void> ListXattr;
    [FieldOffset(28 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, void> RemoveXattr;
    [FieldOffset(29 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, int, void> Access;
    [FieldOffset(30 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, byte*, uint, FuseFileInfo*, void> Create;
    [FieldOffset(31 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, FuseLock*, void> GetLk;
    [FieldOffset(32 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, FuseLock*, int, void> SetLk;
    // 33 bmap, 34 ioctl, 35 poll, 36 write_buf, 37 retrieve_reply
    [FieldOffset(38 * P)] public delegate* unmanaged[Cdecl]<nint, nuint, FuseForgetData*, void> ForgetMulti;
    [FieldOffset(39 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, FuseFileInfo*, int, void> Flock;
    [FieldOffset(40 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, int, long, long, FuseFileInfo*, void> Fallocate;
    [FieldOffset(41 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, nuint, long, FuseFileInfo*, void> ReadDirPlus;
    [FieldOffset(42 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, long, FuseFileInfo*, ulong, long, FuseFileInfo*, nuint, int, void> CopyFileRange;
    [FieldOffset(43 * P)] public delegate* unmanaged[Cdecl]<nint, ulong, long, int, FuseFileInfo*, void> Lseek;
}
