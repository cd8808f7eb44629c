using System.Buffers;
using Microsoft.Extensions.Logging;
using TruckeeFs.Fuse;
using TruckeeFs.Meta;
using TruckeeFs.Vfs;
using VfsEngine = TruckeeFs.Vfs.Vfs;

namespace TruckeeFs.Cli;

/// <summary>
/// Translates FUSE low-level requests into engine calls and engine results into replies.
/// Operations that may wait on a backend answer from whichever thread finishes them; the
/// request's spans are copied before that.
/// </summary>
internal sealed partial class FuseAdapter(VfsEngine vfs, ILogger log) : FuseOperations
{
    private const uint MaxWrite = 1 << 20;
    private const int LockShared = 1;
    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;
    private const long StatBlockSize = 128 << 10;

    private readonly double _attributeTimeout = vfs.Options.AttributeTimeout;
    private readonly double _entryTimeout = vfs.Options.EntryTimeout;

    /// <summary>The kernel's FUSE protocol ("7.45"), known once the kernel sent INIT.</summary>
    public string? KernelProtocol { get; private set; }

    public override void Init(FuseConnection connection)
    {
        KernelProtocol = $"{connection.ProtocolMajor}.{connection.ProtocolMinor}";
        connection.MaxWrite = MaxWrite;
        connection.MaxReadahead = MaxWrite;
        // No writeback cache: every write reaches the engine, so close-to-open holds and a
        // crash of the kernel's cache cannot lose acknowledged writes.
        var wanted = FuseCapabilities.AsyncRead | FuseCapabilities.ParallelDirops | FuseCapabilities.ReaddirPlus
            | FuseCapabilities.ReaddirPlusAuto | FuseCapabilities.AtomicOTrunc | FuseCapabilities.AutoInvalData
            | FuseCapabilities.SpliceWrite | FuseCapabilities.SpliceMove | FuseCapabilities.SpliceRead
            // Locks are kept in the metadata, so they hold between mounts, not only on this kernel.
            | FuseCapabilities.PosixLocks | FuseCapabilities.FlockLocks;
        // libfuse asks for HANDLE_KILLPRIV by default, which would leave clearing set-user-ID and
        // set-group-ID bits on write, truncate and chown to us; the kernel does it correctly
        // (privileged writers keep them) through setattr when we leave it out.
        connection.Want = (connection.Want | (wanted & connection.Capable)) & ~FuseCapabilities.HandleKillpriv;
        Log.Initialized(log, connection.ProtocolMajor, connection.ProtocolMinor, connection.Want);
    }

    public override void Destroy() => Log.Destroyed(log);

    public override void Lookup(FuseRequest request, ulong parent, ReadOnlySpan<byte> name) =>
        ReplyEntry(request, vfs.Lookup((long)parent, name, out var entry), entry);

    public override void Forget(ulong inode, ulong lookupCount) => vfs.Forget((long)inode, (long)lookupCount);

    public override void GetAttr(FuseRequest request, ulong inode, FuseFileInfo? file)
    {
        var status = vfs.GetAttributes((long)inode, out var attributes);
        if (status != 0) request.ReplyError(status);
        else request.ReplyAttr(ToStat(attributes), _attributeTimeout);
    }

    public override void SetAttr(FuseRequest request, ulong inode, in FuseStat attr, FuseSetAttrFlags toSet, FuseFileInfo? file)
    {
        var now = NowNanoseconds();
        var change = new AttributeChange
        {
            Mode = toSet.HasFlag(FuseSetAttrFlags.Mode) ? attr.Mode : null,
            Uid = toSet.HasFlag(FuseSetAttrFlags.Uid) ? attr.Uid : null,
            Gid = toSet.HasFlag(FuseSetAttrFlags.Gid) ? attr.Gid : null,
            Atime = toSet.HasFlag(FuseSetAttrFlags.AtimeNow) ? now : toSet.HasFlag(FuseSetAttrFlags.Atime) ? attr.AtimeSec * 1_000_000_000 + attr.AtimeNsec : null,
            Mtime = toSet.HasFlag(FuseSetAttrFlags.MtimeNow) ? now : toSet.HasFlag(FuseSetAttrFlags.Mtime) ? attr.MtimeSec * 1_000_000_000 + attr.MtimeNsec : null,
        };
        long? size = toSet.HasFlag(FuseSetAttrFlags.Size) ? attr.Size : null;
        Answer(request, vfs.SetAttributesAsync((long)inode, change, size), (r, result) =>
        {
            if (result.Status != 0) r.ReplyError(result.Status);
            else r.ReplyAttr(ToStat(result.Attributes!), _attributeTimeout);
        });
    }

    public override void ReadLink(FuseRequest request, ulong inode)
    {
        var status = vfs.ReadLink((long)inode, out var target);
        if (status != 0) request.ReplyError(status);
        else request.ReplyReadLink(target);
    }

    public override void MkNod(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode, ulong rdev) =>
        ReplyEntry(request, vfs.MakeNode(Context(request), (long)parent, name, mode, (long)rdev, out var entry), entry);

    public override void MkDir(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode) =>
        ReplyEntry(request, vfs.MakeDirectory(Context(request), (long)parent, name, mode, out var entry), entry);

    public override void Symlink(FuseRequest request, ReadOnlySpan<byte> target, ulong parent, ReadOnlySpan<byte> name) =>
        ReplyEntry(request, vfs.Symlink(Context(request), (long)parent, name, target, out var entry), entry);

    public override void Link(FuseRequest request, ulong inode, ulong newParent, ReadOnlySpan<byte> newName) =>
        ReplyEntry(request, vfs.Link((long)inode, (long)newParent, newName, out var entry), entry);

    public override void Unlink(FuseRequest request, ulong parent, ReadOnlySpan<byte> name) =>
        request.ReplyError(vfs.Unlink((long)parent, name));

    public override void RmDir(FuseRequest request, ulong parent, ReadOnlySpan<byte> name) =>
        request.ReplyError(vfs.RemoveDirectory((long)parent, name));

    public override void Rename(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, uint flags) =>
        request.ReplyError(vfs.Rename((long)parent, name, (long)newParent, newName, flags));

    public override void Create(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode, FuseFileInfo file)
    {
        var status = vfs.Create(Context(request), (long)parent, name, mode, file.Flags, out var entry, out var handle);
        if (status != 0)
        {
            request.ReplyError(status);
            return;
        }
        file.Handle = handle;
        file.KeepCache = true;
        request.ReplyCreate(ToEntry(entry), file);
    }

    public override void Open(FuseRequest request, ulong inode, FuseFileInfo file) =>
        Answer(request, vfs.OpenAsync((long)inode, file.Flags), (r, result) =>
        {
            if (result.Status != 0)
            {
                r.ReplyError(result.Status);
                return;
            }
            // The kernel's page cache survives the open only if the contents are the version this
            // mount last served (another mount may have committed a new one of the same size and mtime).
            var opened = file;
            opened.Handle = result.Handle;
            opened.KeepCache = result.KeepCache;
            r.ReplyOpen(opened);
        });

    public override void Read(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)size);
        Answer(request, vfs.ReadAsync(file.Handle, offset, buffer.AsMemory(0, (int)size)), (r, result) =>
        {
            try
            {
                if (result.Status != 0) r.ReplyError(result.Status);
                else r.ReplyBuffer(buffer.AsSpan(0, result.Count));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        });
    }

    public override void Write(FuseRequest request, ulong inode, ReadOnlySpan<byte> data, long offset, FuseFileInfo file)
    {
        // The kernel's buffer is gone once this returns: copy it for a write that may finish later.
        var buffer = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(buffer);
        var count = data.Length;
        Answer(request, vfs.WriteAsync(file.Handle, offset, buffer.AsMemory(0, count)), (r, status) =>
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (status != 0) r.ReplyError(status);
            else r.ReplyWrite((ulong)count);
        });
    }

    /// <summary>close(2) of a descriptor: commits, then drops the POSIX locks its process held on the file (committed first, so the next holder reads the changes).</summary>
    public override void Flush(FuseRequest request, ulong inode, FuseFileInfo file) =>
        Answer(request, FlushAsync((long)inode, file.Handle, file.LockOwner), (r, status) => r.ReplyError(status));

    public override void Fsync(FuseRequest request, ulong inode, bool dataOnly, FuseFileInfo file) =>
        Answer(request, vfs.FsyncAsync(file.Handle), (r, status) => r.ReplyError(status));

    public override void Release(FuseRequest request, ulong inode, FuseFileInfo file) =>
        Answer(request, ReleaseAsync((long)inode, file.Handle, file.FlockRelease ? file.LockOwner : null), (r, _) => r.ReplyError(0));

    public override void Flock(FuseRequest request, ulong inode, FuseFileInfo file, int operation)
    {
        var type = (operation & ~LockNonBlocking) switch { LockShared => FileLockType.Read, LockExclusive => FileLockType.Write, _ => FileLockType.Unlock };
        var pending = vfs.SetLockAsync(file.Handle, (long)inode, file.LockOwner, request.Context.Pid, flock: true, type, 0, long.MaxValue,
            wait: (operation & LockNonBlocking) == 0, () => request.IsInterrupted);
        Answer(request, pending, (r, status) => r.ReplyError(status));
    }

    public override void GetLk(FuseRequest request, ulong inode, FuseFileInfo file, in FuseLock lockRequest)
    {
        var (first, last) = Range(lockRequest);
        var holder = vfs.TestLock((long)inode, file.LockOwner, (FileLockType)lockRequest.Type, first, last);
        var reply = holder is { } h
            ? new FuseLock { Type = (short)h.Type, Start = h.First, Length = h.Last == long.MaxValue ? 0 : h.Last - h.First + 1, Pid = h.Pid }
            : lockRequest with { Type = (short)FileLockType.Unlock };
        request.ReplyLock(reply);
    }

    public override void SetLk(FuseRequest request, ulong inode, FuseFileInfo file, in FuseLock lockRequest, bool sleep)
    {
        var (first, last) = Range(lockRequest);
        var pending = vfs.SetLockAsync(file.Handle, (long)inode, file.LockOwner, lockRequest.Pid, flock: false, (FileLockType)lockRequest.Type, first, last,
            wait: sleep, () => request.IsInterrupted);
        Answer(request, pending, (r, status) => r.ReplyError(status));
    }

    public override void OpenDir(FuseRequest request, ulong inode, FuseFileInfo file)
    {
        var status = vfs.OpenDirectory((long)inode, out var handle);
        if (status != 0)
        {
            request.ReplyError(status);
            return;
        }
        file.Handle = handle;
        // The kernel may keep listings in its page cache across opens: it drops them itself when
        // this mount changes the directory (and other mounts' changes arrive as invalidations).
        file.CacheReaddir = true;
        file.KeepCache = true;
        request.ReplyOpen(file);
    }

    public override void ReleaseDir(FuseRequest request, ulong inode, FuseFileInfo file)
    {
        vfs.ReleaseDirectory(file.Handle);
        request.ReplyError(0);
    }

    public override void ReadDir(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file) =>
        ReadDirectory(request, file.Handle, size, offset, plus: false);

    public override void ReadDirPlus(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file) =>
        ReadDirectory(request, file.Handle, size, offset, plus: true);

    public override void FsyncDir(FuseRequest request, ulong inode, bool dataOnly, FuseFileInfo file)
    {
        vfs.SyncMetadata();
        request.ReplyError(0);
    }

    public override void StatFs(FuseRequest request, ulong inode)
    {
        var s = vfs.StatFs();
        request.ReplyStatFs(new FuseStatVfs
        {
            BlockSize = (ulong)s.BlockSize, FragmentSize = (ulong)s.BlockSize, Blocks = (ulong)s.Blocks,
            BlocksFree = (ulong)s.BlocksFree, BlocksAvailable = (ulong)s.BlocksAvailable,
            Files = (ulong)s.Files, FilesFree = (ulong)s.FilesFree, FilesAvailable = (ulong)s.FilesFree, NameMax = (ulong)s.NameMax,
        });
    }

    public override void SetXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags) =>
        request.ReplyError(vfs.SetXattr((long)inode, name, value, flags));

    public override void GetXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name, ulong size)
    {
        var status = vfs.GetXattr((long)inode, name, (int)Math.Min(size, int.MaxValue), out var value);
        if (status != 0) request.ReplyError(status);
        else if (size == 0) request.ReplyXattrSize((ulong)value.Length);
        else request.ReplyBuffer(value);
    }

    public override void ListXattr(FuseRequest request, ulong inode, ulong size)
    {
        var status = vfs.ListXattrs((long)inode, (int)Math.Min(size, int.MaxValue), out var list);
        if (status != 0) request.ReplyError(status);
        else if (size == 0) request.ReplyXattrSize((ulong)list.Length);
        else request.ReplyBuffer(list);
    }

    public override void RemoveXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name) =>
        request.ReplyError(vfs.RemoveXattr((long)inode, name));

    public override void Fallocate(FuseRequest request, ulong inode, int mode, long offset, long length, FuseFileInfo file) =>
        Answer(request, vfs.FallocateAsync(file.Handle, mode, offset, length), (r, status) => r.ReplyError(status));

    public override void CopyFileRange(FuseRequest request, ulong inodeIn, long offsetIn, FuseFileInfo fileIn, ulong inodeOut, long offsetOut, FuseFileInfo fileOut, ulong length, int flags) =>
        Answer(request, vfs.CopyFileRangeAsync(fileIn.Handle, offsetIn, fileOut.Handle, offsetOut, (long)Math.Min(length, long.MaxValue), flags), (r, result) =>
        {
            if (result.Status != 0) r.ReplyError(result.Status);
            else r.ReplyWrite((ulong)result.Count);
        });

    public override void Lseek(FuseRequest request, ulong inode, long offset, int whence, FuseFileInfo file) =>
        Answer(request, vfs.SeekAsync(file.Handle, offset, whence), (r, result) =>
        {
            if (result.Status != 0) r.ReplyError(result.Status);
            else r.ReplyLseek(result.Offset);
        });

    private void ReadDirectory(FuseRequest request, ulong handle, ulong size, long offset, bool plus)
    {
        // A directory record takes at least 24 bytes: ask for no more than could fit.
        var status = vfs.ReadDirectory(handle, offset, (int)Math.Max(2, size / 24), out var entries);
        if (status != 0)
        {
            request.ReplyError(status);
            return;
        }
        var buffer = new FuseDirectoryBuffer(size);
        foreach (var entry in entries)
        {
            bool added;
            if (plus)
            {
                added = buffer.TryAddPlus(request, entry.Name, ToEntry(entry.Attributes), entry.NextOffset);
                // Each entry readdirplus returns is a lookup, except "." and "..".
                if (added && !entry.IsDotEntry) vfs.Remember(entry.Attributes);
            }
            else
            {
                added = buffer.TryAdd(request, entry.Name, ToStat(entry.Attributes), entry.NextOffset);
            }
            if (!added) break;
        }
        request.ReplyBuffer(buffer.Written);
    }

    // A close releases the closer's locks even when the commit it started failed: the
    // application has closed the file either way, and a lock left behind would keep every other
    // process (on every mount) waiting for a holder that no longer exists.
    private async ValueTask<int> FlushAsync(long inode, ulong handle, ulong lockOwner)
    {
        try
        {
            return await vfs.FlushAsync(handle).ConfigureAwait(false);
        }
        finally
        {
            vfs.ReleasePosixLocks(inode, lockOwner);
        }
    }

    private async ValueTask<int> ReleaseAsync(long inode, ulong handle, ulong? flockOwner)
    {
        try
        {
            await vfs.ReleaseAsync(handle).ConfigureAwait(false);
        }
        finally
        {
            vfs.ReleaseHandleLocks(inode, handle);
            if (flockOwner is { } owner) vfs.ReleaseFlocks(inode, owner);
        }
        return 0;
    }

    /// <summary>The bytes a POSIX lock covers, first to last inclusive; libfuse hands it over from SEEK_SET, length 0 meaning "to the end".</summary>
    private static (long First, long Last) Range(in FuseLock l) => (l.Start, l.Length == 0 ? long.MaxValue : l.Start + l.Length - 1);

    private void ReplyEntry(FuseRequest request, int status, Inode entry)
    {
        if (status != 0) request.ReplyError(status);
        else request.ReplyEntry(ToEntry(entry));
    }

    /// <summary>Replies now if the operation finished synchronously, otherwise when it does; a failure answers EIO.</summary>
    private void Answer<T>(FuseRequest request, ValueTask<T> pending, Action<FuseRequest, T> reply)
    {
        if (pending.IsCompletedSuccessfully)
        {
            reply(request, pending.Result);
            return;
        }
        _ = AnswerLaterAsync(request, pending, reply);
    }

    private async Task AnswerLaterAsync<T>(FuseRequest request, ValueTask<T> pending, Action<FuseRequest, T> reply)
    {
        T result;
        try
        {
            result = await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.OperationFailed(log, e);
            request.ReplyError(Errno.EIO);
            return;
        }
        reply(request, result);
    }

    private FuseEntryParam ToEntry(Inode inode) => new()
    {
        Inode = (ulong)inode.Id,
        Generation = 0,
        Attr = ToStat(inode),
        AttrTimeout = _attributeTimeout,
        EntryTimeout = _entryTimeout,
    };

    private static FuseStat ToStat(Inode inode) => new()
    {
        Inode = (ulong)inode.Id,
        Mode = (uint)inode.Mode,
        Nlink = (ulong)inode.Nlink,
        Uid = (uint)inode.Uid,
        Gid = (uint)inode.Gid,
        Rdev = (ulong)inode.Rdev,
        Size = inode.Size,
        BlockSize = StatBlockSize,
        Blocks = (inode.Allocated + 511) / 512,
        AtimeSec = inode.Atime / 1_000_000_000, AtimeNsec = inode.Atime % 1_000_000_000,
        MtimeSec = inode.Mtime / 1_000_000_000, MtimeNsec = inode.Mtime % 1_000_000_000,
        CtimeSec = inode.Ctime / 1_000_000_000, CtimeNsec = inode.Ctime % 1_000_000_000,
    };

    private static RequestContext Context(FuseRequest request)
    {
        var context = request.Context;
        return new RequestContext(context.Uid, context.Gid, context.Pid);
    }

    private static long NowNanoseconds() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    private static partial class Log
    {
        [LoggerMessage(2001, LogLevel.Information, "FUSE session started: kernel protocol {Major}.{Minor}, capabilities {Want}")]
        public static partial void Initialized(ILogger logger, uint major, uint minor, FuseCapabilities want);

        [LoggerMessage(2002, LogLevel.Information, "FUSE session ended")]
        public static partial void Destroyed(ILogger logger);

        [LoggerMessage(2003, LogLevel.Error, "a filesystem operation failed; answered EIO")]
        public static partial void OperationFailed(ILogger logger, Exception exception);
    }
}
