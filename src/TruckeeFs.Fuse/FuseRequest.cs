namespace TruckeeFs.Fuse;

/// <summary>
/// One kernel request (libfuse's <c>fuse_req_t</c>). It must be answered exactly once, with the
/// reply its operation expects or with <see cref="ReplyError"/>; the answer may come from any
/// thread, after the operation method returned. Answering frees the request: the struct must not
/// be used afterwards, nor answered after the session was disposed.
/// Replies return 0 or a negative errno (for example -ENOENT when the request was interrupted and
/// the kernel no longer waits for it); they never throw.
/// </summary>
public readonly unsafe struct FuseRequest
{
    /// <summary>
    /// The request the current callback thread answered last, so that a callback that answered and
    /// then threw is not answered a second time (which would use freed memory).
    /// </summary>
    [ThreadStatic]
    private static nint t_answered;

    private readonly nint _req;

    internal FuseRequest(nint req) => _req = req;

    internal nint Handle => _req;

    /// <summary>Who made the request. Valid until the request is answered.</summary>
    public FuseContext Context => *Native.fuse_req_ctx(_req);

    /// <summary>Whether the kernel asked to interrupt the request (the caller got a signal).</summary>
    public bool IsInterrupted => Native.fuse_req_interrupted(_req) != 0;

    /// <summary>Answers with an error, or with success and no data when <paramref name="errno"/> is 0.</summary>
    /// <param name="errno">0 or a positive errno (<see cref="Errno"/>).</param>
    public int ReplyError(int errno)
    {
        Answered();
        return Native.fuse_reply_err(_req, errno);
    }

    /// <summary>Answers lookup, mknod, mkdir, symlink and link.</summary>
    public int ReplyEntry(in FuseEntryParam entry)
    {
        Answered();
        fixed (FuseEntryParam* e = &entry)
        {
            return Native.fuse_reply_entry(_req, e);
        }
    }

    /// <summary>Answers create; <paramref name="file"/> carries the handle and open flags.</summary>
    public int ReplyCreate(in FuseEntryParam entry, in FuseFileInfo file)
    {
        Answered();
        fixed (FuseEntryParam* e = &entry)
        fixed (FuseFileInfo* fi = &file)
        {
            return Native.fuse_reply_create(_req, e, fi);
        }
    }

    /// <summary>Answers getattr and setattr.</summary>
    public int ReplyAttr(in FuseStat attr, double timeoutSeconds)
    {
        Answered();
        fixed (FuseStat* st = &attr)
        {
            return Native.fuse_reply_attr(_req, st, timeoutSeconds);
        }
    }

    /// <summary>Answers readlink with the target's bytes (no NUL needed).</summary>
    public int ReplyReadLink(ReadOnlySpan<byte> target)
    {
        Answered();
        var z = Native.NulTerminate(target, stackalloc byte[Native.NameScratch], out var rented);
        try
        {
            fixed (byte* link = z)
            {
                return Native.fuse_reply_readlink(_req, link);
            }
        }
        finally
        {
            Native.Return(rented);
        }
    }

    /// <summary>Answers open and opendir; <paramref name="file"/> carries the handle and open flags.</summary>
    public int ReplyOpen(in FuseFileInfo file)
    {
        Answered();
        fixed (FuseFileInfo* fi = &file)
        {
            return Native.fuse_reply_open(_req, fi);
        }
    }

    /// <summary>Answers write with the number of bytes written.</summary>
    public int ReplyWrite(ulong count)
    {
        Answered();
        return Native.fuse_reply_write(_req, (nuint)count);
    }

    /// <summary>Answers read, readdir, readdirplus, getxattr and listxattr with data (libfuse copies it).</summary>
    public int ReplyBuffer(ReadOnlySpan<byte> data)
    {
        Answered();
        fixed (byte* buf = data)
        {
            return Native.fuse_reply_buf(_req, buf, (nuint)data.Length);
        }
    }

    /// <summary>Answers statfs.</summary>
    public int ReplyStatFs(in FuseStatVfs stat)
    {
        Answered();
        fixed (FuseStatVfs* st = &stat)
        {
            return Native.fuse_reply_statfs(_req, st);
        }
    }

    /// <summary>Answers getxattr and listxattr asked with size 0: the size the data needs.</summary>
    public int ReplyXattrSize(ulong size)
    {
        Answered();
        return Native.fuse_reply_xattr(_req, (nuint)size);
    }

    /// <summary>Answers getlk.</summary>
    public int ReplyLock(in FuseLock lockInfo)
    {
        Answered();
        fixed (FuseLock* l = &lockInfo)
        {
            return Native.fuse_reply_lock(_req, l);
        }
    }

    /// <summary>Answers lseek with the resulting offset.</summary>
    public int ReplyLseek(long offset)
    {
        Answered();
        return Native.fuse_reply_lseek(_req, offset);
    }

    /// <summary>Called by a callback before it runs the operation.</summary>
    internal static void BeginCallback() => t_answered = 0;

    /// <summary>Whether the operation that threw had already answered <paramref name="req"/> on this thread.</summary>
    internal static bool WasAnswered(nint req) => t_answered == req;

    private void Answered() => t_answered = _req;
}
