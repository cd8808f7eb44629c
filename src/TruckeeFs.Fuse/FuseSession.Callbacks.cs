using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TruckeeFs.Fuse;

// The functions libfuse calls, one per registered operation. An exception escaping an
// UnmanagedCallersOnly method kills the process, so each catches, logs and answers EIO (unless
// the operation had already answered on this thread).
public sealed unsafe partial class FuseSession
{
    private static LowLevelOps BuildOperations(Type type)
    {
        var ops = new LowLevelOps { Init = &OnInit, Destroy = &OnDestroy };
        if (Overrides(type, nameof(FuseOperations.Forget)) || Overrides(type, nameof(FuseOperations.ForgetMulti)))
        {
            ops.Forget = &OnForget;
            ops.ForgetMulti = &OnForgetMulti;
        }

        if (Overrides(type, nameof(FuseOperations.Lookup))) ops.Lookup = &OnLookup;
        if (Overrides(type, nameof(FuseOperations.GetAttr))) ops.GetAttr = &OnGetAttr;
        if (Overrides(type, nameof(FuseOperations.SetAttr))) ops.SetAttr = &OnSetAttr;
        if (Overrides(type, nameof(FuseOperations.ReadLink))) ops.ReadLink = &OnReadLink;
        if (Overrides(type, nameof(FuseOperations.MkNod))) ops.MkNod = &OnMkNod;
        if (Overrides(type, nameof(FuseOperations.MkDir))) ops.MkDir = &OnMkDir;
        if (Overrides(type, nameof(FuseOperations.Unlink))) ops.Unlink = &OnUnlink;
        if (Overrides(type, nameof(FuseOperations.RmDir))) ops.RmDir = &OnRmDir;
        if (Overrides(type, nameof(FuseOperations.Symlink))) ops.Symlink = &OnSymlink;
        if (Overrides(type, nameof(FuseOperations.Rename))) ops.Rename = &OnRename;
        if (Overrides(type, nameof(FuseOperations.Link))) ops.Link = &OnLink;
        if (Overrides(type, nameof(FuseOperations.Open))) ops.Open = &OnOpen;
        if (Overrides(type, nameof(FuseOperations.Read))) ops.Read = &OnRead;
        if (Overrides(type, nameof(FuseOperations.Write))) ops.Write = &OnWrite;
        if (Overrides(type, nameof(FuseOperations.Flush))) ops.Flush = &OnFlush;
        if (Overrides(type, nameof(FuseOperations.Release))) ops.Release = &OnRelease;
        if (Overrides(type, nameof(FuseOperations.Fsync))) ops.Fsync = &OnFsync;
        if (Overrides(type, nameof(FuseOperations.OpenDir))) ops.OpenDir = &OnOpenDir;
        if (Overrides(type, nameof(FuseOperations.ReadDir))) ops.ReadDir = &OnReadDir;
        if (Overrides(type, nameof(FuseOperations.ReleaseDir))) ops.ReleaseDir = &OnReleaseDir;
        if (Overrides(type, nameof(FuseOperations.FsyncDir))) ops.FsyncDir = &OnFsyncDir;
        if (Overrides(type, nameof(FuseOperations.StatFs))) ops.StatFs = &OnStatFs;
        if (Overrides(type, nameof(FuseOperations.SetXattr))) ops.SetXattr = &OnSetXattr;
        if (Overrides(type, nameof(FuseOperations.GetXattr))) ops.GetXattr = &OnGetXattr;
        if (Overrides(type, nameof(FuseOperations.ListXattr))) ops.ListXattr = &OnListXattr;
        if (Overrides(type, nameof(FuseOperations.RemoveXattr))) ops.RemoveXattr = &OnRemoveXattr;
        if (Overrides(type, nameof(FuseOperations.Access))) ops.Access = &OnAccess;
        if (Overrides(type, nameof(FuseOperations.Create))) ops.Create = &OnCreate;
        if (Overrides(type, nameof(FuseOperations.GetLk))) ops.GetLk = &OnGetLk;
        if (Overrides(type, nameof(FuseOperations.SetLk))) ops.SetLk = &OnSetLk;
        if (Overrides(type, nameof(FuseOperations.Flock))) ops.Flock = &OnFlock;
        if (Overrides(type, nameof(FuseOperations.Fallocate))) ops.Fallocate = &OnFallocate;
        if (Overrides(type, nameof(FuseOperations.ReadDirPlus))) ops.ReadDirPlus = &OnReadDirPlus;
        if (Overrides(type, nameof(FuseOperations.CopyFileRange))) ops.CopyFileRange = &OnCopyFileRange;
        if (Overrides(type, nameof(FuseOperations.Lseek))) ops.Lseek = &OnLseek;
        return ops;
    }

    private static bool Overrides(Type type, string name)
    {
        var declared = typeof(FuseOperations).GetMethod(name)!;
        var parameters = Array.ConvertAll(declared.GetParameters(), p => p.ParameterType);
        return type.GetMethod(name, parameters)!.DeclaringType != typeof(FuseOperations);
    }

    private static FuseSession Enter(nint req)
    {
        FuseRequest.BeginCallback();
        return GCHandle<FuseSession>.FromIntPtr(Native.fuse_req_userdata(req)).Target;
    }

    private void Fail(nint req, string operation, Exception exception)
    {
        Log($"FUSE {operation} failed: {exception}");
        if (!FuseRequest.WasAnswered(req))
        {
            Native.fuse_reply_err(req, Errno.EIO);
        }
    }

    private static FuseFileInfo? Optional(FuseFileInfo* fi) => fi == null ? null : *fi;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnInit(nint userdata, ConnInfo* conn)
    {
        var s = GCHandle<FuseSession>.FromIntPtr(userdata).Target;
        var connection = new FuseConnection(conn);
        try
        {
            s._operations.Init(connection);
            s.RaiseReadahead(connection.MaxReadahead);
        }
        catch (Exception e)
        {
            // A filesystem that could not initialize must not serve: end the loop.
            s.Log($"FUSE Init failed, ending the session: {e}");
            s._initFailed = true;
            Native.fuse_session_exit(s._se);
        }
        finally
        {
            connection.Invalidate();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnDestroy(nint userdata)
    {
        var s = GCHandle<FuseSession>.FromIntPtr(userdata).Target;
        try
        {
            s._operations.Destroy();
        }
        catch (Exception e)
        {
            s.Log($"FUSE Destroy failed: {e}");
        }
    }

    // Single forgets go through ForgetMulti too, so a filesystem overriding only ForgetMulti
    // sees every forget; the default ForgetMulti calls Forget.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnForget(nint req, ulong ino, ulong nlookup)
    {
        var s = Enter(req);
        var forget = new FuseForgetData(ino, nlookup);
        try
        {
            s._operations.ForgetMulti(new ReadOnlySpan<FuseForgetData>(in forget));
        }
        catch (Exception e)
        {
            s.Log($"FUSE Forget failed: {e}");
        }

        Native.fuse_reply_none(req);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnForgetMulti(nint req, nuint count, FuseForgetData* forgets)
    {
        var s = Enter(req);
        try
        {
            s._operations.ForgetMulti(new ReadOnlySpan<FuseForgetData>(forgets, checked((int)count)));
        }
        catch (Exception e)
        {
            s.Log($"FUSE ForgetMulti failed: {e}");
        }

        Native.fuse_reply_none(req);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnLookup(nint req, ulong parent, byte* name)
    {
        var s = Enter(req);
        try { s._operations.Lookup(new(req), parent, Native.Span(name)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Lookup), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnGetAttr(nint req, ulong ino, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.GetAttr(new(req), ino, Optional(fi)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.GetAttr), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnSetAttr(nint req, ulong ino, FuseStat* attr, int toSet, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.SetAttr(new(req), ino, in *attr, (FuseSetAttrFlags)toSet, Optional(fi)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.SetAttr), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnReadLink(nint req, ulong ino)
    {
        var s = Enter(req);
        try { s._operations.ReadLink(new(req), ino); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.ReadLink), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnMkNod(nint req, ulong parent, byte* name, uint mode, ulong rdev)
    {
        var s = Enter(req);
        try { s._operations.MkNod(new(req), parent, Native.Span(name), mode, rdev); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.MkNod), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnMkDir(nint req, ulong parent, byte* name, uint mode)
    {
        var s = Enter(req);
        try { s._operations.MkDir(new(req), parent, Native.Span(name), mode); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.MkDir), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnUnlink(nint req, ulong parent, byte* name)
    {
        var s = Enter(req);
        try { s._operations.Unlink(new(req), parent, Native.Span(name)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Unlink), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnRmDir(nint req, ulong parent, byte* name)
    {
        var s = Enter(req);
        try { s._operations.RmDir(new(req), parent, Native.Span(name)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.RmDir), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnSymlink(nint req, byte* link, ulong parent, byte* name)
    {
        var s = Enter(req);
        try { s._operations.Symlink(new(req), Native.Span(link), parent, Native.Span(name)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Symlink), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnRename(nint req, ulong parent, byte* name, ulong newParent, byte* newName, uint flags)
    {
        var s = Enter(req);
        try { s._operations.Rename(new(req), parent, Native.Span(name), newParent, Native.Span(newName), flags); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Rename), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnLink(nint req, ulong ino, ulong newParent, byte* newName)
    {
        var s = Enter(req);
        try { s._operations.Link(new(req), ino, newParent, Native.Span(newName)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Link), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnOpen(nint req, ulong ino, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Open(new(req), ino, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Open), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnRead(nint req, ulong ino, nuint size, long off, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Read(new(req), ino, size, off, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Read), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnWrite(nint req, ulong ino, byte* buf, nuint size, long off, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Write(new(req), ino, new ReadOnlySpan<byte>(buf, checked((int)size)), off, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Write), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnFlush(nint req, ulong ino, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Flush(new(req), ino, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Flush), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnRelease(nint req, ulong ino, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Release(new(req), ino, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Release), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnFsync(nint req, ulong ino, int datasync, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Fsync(new(req), ino, datasync != 0, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Fsync), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnOpenDir(nint req, ulong ino, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.OpenDir(new(req), ino, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.OpenDir), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnReadDir(nint req, ulong ino, nuint size, long off, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.ReadDir(new(req), ino, size, off, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.ReadDir), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnReleaseDir(nint req, ulong ino, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.ReleaseDir(new(req), ino, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.ReleaseDir), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnFsyncDir(nint req, ulong ino, int datasync, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.FsyncDir(new(req), ino, datasync != 0, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.FsyncDir), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnStatFs(nint req, ulong ino)
    {
        var s = Enter(req);
        try { s._operations.StatFs(new(req), ino); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.StatFs), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnSetXattr(nint req, ulong ino, byte* name, byte* value, nuint size, int flags)
    {
        var s = Enter(req);
        try { s._operations.SetXattr(new(req), ino, Native.Span(name), new ReadOnlySpan<byte>(value, checked((int)size)), flags); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.SetXattr), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnGetXattr(nint req, ulong ino, byte* name, nuint size)
    {
        var s = Enter(req);
        try { s._operations.GetXattr(new(req), ino, Native.Span(name), size); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.GetXattr), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnListXattr(nint req, ulong ino, nuint size)
    {
        var s = Enter(req);
        try { s._operations.ListXattr(new(req), ino, size); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.ListXattr), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnRemoveXattr(nint req, ulong ino, byte* name)
    {
        var s = Enter(req);
        try { s._operations.RemoveXattr(new(req), ino, Native.Span(name)); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.RemoveXattr), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnAccess(nint req, ulong ino, int mask)
    {
        var s = Enter(req);
        try { s._operations.Access(new(req), ino, mask); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Access), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnCreate(nint req, ulong parent, byte* name, uint mode, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Create(new(req), parent, Native.Span(name), mode, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Create), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnGetLk(nint req, ulong ino, FuseFileInfo* fi, FuseLock* lockInfo)
    {
        var s = Enter(req);
        try { s._operations.GetLk(new(req), ino, *fi, in *lockInfo); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.GetLk), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnSetLk(nint req, ulong ino, FuseFileInfo* fi, FuseLock* lockInfo, int sleep)
    {
        var s = Enter(req);
        try { s._operations.SetLk(new(req), ino, *fi, in *lockInfo, sleep != 0); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.SetLk), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnFlock(nint req, ulong ino, FuseFileInfo* fi, int op)
    {
        var s = Enter(req);
        try { s._operations.Flock(new(req), ino, *fi, op); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Flock), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnFallocate(nint req, ulong ino, int mode, long offset, long length, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Fallocate(new(req), ino, mode, offset, length, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Fallocate), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnReadDirPlus(nint req, ulong ino, nuint size, long off, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.ReadDirPlus(new(req), ino, size, off, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.ReadDirPlus), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnCopyFileRange(nint req, ulong inoIn, long offIn, FuseFileInfo* fiIn, ulong inoOut, long offOut, FuseFileInfo* fiOut, nuint len, int flags)
    {
        var s = Enter(req);
        try { s._operations.CopyFileRange(new(req), inoIn, offIn, *fiIn, inoOut, offOut, *fiOut, len, flags); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.CopyFileRange), e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnLseek(nint req, ulong ino, long off, int whence, FuseFileInfo* fi)
    {
        var s = Enter(req);
        try { s._operations.Lseek(new(req), ino, off, whence, *fi); }
        catch (Exception e) { s.Fail(req, nameof(FuseOperations.Lseek), e); }
    }
}
