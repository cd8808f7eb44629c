namespace TruckeeFs.Fuse;

/// <summary>
/// The low-level FUSE operations a filesystem implements. Override only what the filesystem
/// supports: the session registers a libfuse callback only for overridden methods, because the
/// kernel treats a missing operation differently from one that fails (no <c>flock</c> or
/// <c>setlk</c> means the kernel keeps locks locally; no <c>copy_file_range</c> means it copies
/// bytes itself).
///
/// Threading: methods are called on libfuse worker threads, several at once. Each call must
/// answer its <see cref="FuseRequest"/> exactly once, either before returning or later from any
/// thread. Spans passed in (names, write data) are valid only until the method returns: copy
/// what an asynchronous reply needs before the first await. An exception escaping a method is
/// caught by the session, logged and answered with EIO.
/// </summary>
public abstract class FuseOperations
{
    /// <summary>Called once before the first request; may change <paramref name="connection"/>.Want.</summary>
    public virtual void Init(FuseConnection connection) { }

    /// <summary>Called once when the session ends (unmount).</summary>
    public virtual void Destroy() { }

    public virtual void Lookup(FuseRequest request, ulong parent, ReadOnlySpan<byte> name) => request.ReplyError(Errno.ENOSYS);
    /// <summary>The kernel gives back <paramref name="lookupCount"/> lookups of <paramref name="inode"/>. No reply.</summary>
    public virtual void Forget(ulong inode, ulong lookupCount) { }
    /// <summary>
    /// Every forget arrives here, single ones as a one-element span (so overriding either method
    /// sees them all); the default calls <see cref="Forget"/> for each. No reply.
    /// </summary>
    public virtual void ForgetMulti(ReadOnlySpan<FuseForgetData> forgets)
    {
        foreach (var f in forgets) Forget(f.Inode, f.LookupCount);
    }
    public virtual void GetAttr(FuseRequest request, ulong inode, FuseFileInfo? file) => request.ReplyError(Errno.ENOSYS);
    public virtual void SetAttr(FuseRequest request, ulong inode, in FuseStat attr, FuseSetAttrFlags toSet, FuseFileInfo? file) => request.ReplyError(Errno.ENOSYS);
    public virtual void ReadLink(FuseRequest request, ulong inode) => request.ReplyError(Errno.ENOSYS);
    public virtual void MkNod(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode, ulong rdev) => request.ReplyError(Errno.ENOSYS);
    public virtual void MkDir(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode) => request.ReplyError(Errno.ENOSYS);
    public virtual void Unlink(FuseRequest request, ulong parent, ReadOnlySpan<byte> name) => request.ReplyError(Errno.ENOSYS);
    public virtual void RmDir(FuseRequest request, ulong parent, ReadOnlySpan<byte> name) => request.ReplyError(Errno.ENOSYS);
    public virtual void Symlink(FuseRequest request, ReadOnlySpan<byte> target, ulong parent, ReadOnlySpan<byte> name) => request.ReplyError(Errno.ENOSYS);
    public virtual void Rename(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, uint flags) => request.ReplyError(Errno.ENOSYS);
    public virtual void Link(FuseRequest request, ulong inode, ulong newParent, ReadOnlySpan<byte> newName) => request.ReplyError(Errno.ENOSYS);
    public virtual void Open(FuseRequest request, ulong inode, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void Read(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void Write(FuseRequest request, ulong inode, ReadOnlySpan<byte> data, long offset, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void Flush(FuseRequest request, ulong inode, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void Release(FuseRequest request, ulong inode, FuseFileInfo file) => request.ReplyError(0);
    public virtual void Fsync(FuseRequest request, ulong inode, bool dataOnly, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void OpenDir(FuseRequest request, ulong inode, FuseFileInfo file) => request.ReplyOpen(file);
    public virtual void ReadDir(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void ReadDirPlus(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void ReleaseDir(FuseRequest request, ulong inode, FuseFileInfo file) => request.ReplyError(0);
    public virtual void FsyncDir(FuseRequest request, ulong inode, bool dataOnly, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void StatFs(FuseRequest request, ulong inode) => request.ReplyError(Errno.ENOSYS);
    public virtual void SetXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags) => request.ReplyError(Errno.ENOSYS);
    /// <summary><paramref name="size"/> 0 asks for the value's size (<see cref="FuseRequest.ReplyXattrSize"/>).</summary>
    public virtual void GetXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name, ulong size) => request.ReplyError(Errno.ENOSYS);
    /// <summary><paramref name="size"/> 0 asks for the list's size (<see cref="FuseRequest.ReplyXattrSize"/>).</summary>
    public virtual void ListXattr(FuseRequest request, ulong inode, ulong size) => request.ReplyError(Errno.ENOSYS);
    public virtual void RemoveXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name) => request.ReplyError(Errno.ENOSYS);
    public virtual void Access(FuseRequest request, ulong inode, int mask) => request.ReplyError(Errno.ENOSYS);
    public virtual void Create(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void Fallocate(FuseRequest request, ulong inode, int mode, long offset, long length, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void CopyFileRange(FuseRequest request, ulong inodeIn, long offsetIn, FuseFileInfo fileIn, ulong inodeOut, long offsetOut, FuseFileInfo fileOut, ulong length, int flags) => request.ReplyError(Errno.ENOSYS);
    public virtual void Lseek(FuseRequest request, ulong inode, long offset, int whence, FuseFileInfo file) => request.ReplyError(Errno.ENOSYS);
    public virtual void Flock(FuseRequest request, ulong inode, FuseFileInfo file, int operation) => request.ReplyError(Errno.ENOSYS);
    public virtual void GetLk(FuseRequest request, ulong inode, FuseFileInfo file, in FuseLock lockRequest) => request.ReplyError(Errno.ENOSYS);
    public virtual void SetLk(FuseRequest request, ulong inode, FuseFileInfo file, in FuseLock lockRequest, bool sleep) => request.ReplyError(Errno.ENOSYS);
}
