using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace TruckeeFs.Fuse;

/// <summary>
/// A libfuse low-level session: creates it, mounts it, runs libfuse's multi-threaded loop and
/// dispatches kernel requests to a <see cref="FuseOperations"/>.
///
/// Lifecycle: construct, <see cref="Mount"/>, <see cref="Run"/> (blocks, once), then
/// <see cref="Dispose"/>. The loop ends when the filesystem is unmounted from outside
/// (<c>fusermount3 -u</c>) or when <see cref="Exit"/> or <see cref="Unmount"/> is called from
/// another thread; <see cref="Run"/> then releases the mount before returning.
/// <see cref="Exit"/>, <see cref="Unmount"/> and the notifications may be called from any
/// thread; <see cref="Dispose"/> must not be called from an operation callback, since it waits
/// for the loop (and so for the callbacks) to end.
/// </summary>
public sealed unsafe partial class FuseSession : IDisposable
{
    private enum MountState
    {
        None,
        Mounted,
        // The kernel mount is gone (Exit); libfuse still holds the device fd until Run ends.
        Detached,
    }

    private readonly FuseOperations _operations;
    private readonly Action<string>? _log;
    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _loopIdle = new(true);
    private GCHandle<FuseSession> _self;
    private nint _se;
    private string? _mountpoint;
    private volatile MountState _state;
    private bool _running;
    private bool _ran;
    private bool _exitRequested;
    private volatile bool _initFailed;
    private volatile bool _closing;
    private int _notifying;

    /// <summary>Creates the session; nothing is mounted yet.</summary>
    /// <param name="operations">The filesystem. Only the methods it overrides are registered with libfuse.</param>
    /// <param name="options">
    /// Mount and session options as for <c>-o</c>, one per item (<c>fsname=name</c>,
    /// <c>subtype=name</c>, <c>default_permissions</c>, <c>allow_other</c>, ...); <c>debug</c>
    /// turns on libfuse's request tracing on standard error.
    /// </param>
    /// <param name="log">Receives failures of operation callbacks and of unmounting.</param>
    /// <exception cref="FuseException">libfuse rejected the options.</exception>
    public FuseSession(FuseOperations operations, IReadOnlyList<string> options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(operations);
        ArgumentNullException.ThrowIfNull(options);
        _operations = operations;
        _log = log;

        var ops = BuildOperations(operations.GetType());
        _self = new GCHandle<FuseSession>(this);
        _se = NewSession(BuildArguments(options), &ops, GCHandle<FuseSession>.ToIntPtr(_self));
        if (_se == 0)
        {
            _self.Dispose();
            throw new FuseException(
                $"fuse_session_new failed for options [{string.Join(", ", options)}]; libfuse wrote the reason to standard error.");
        }
    }

    /// <summary>Whether the filesystem is mounted (and not yet unmounted or exited).</summary>
    public bool IsMounted => _state == MountState.Mounted;

    /// <summary>The absolute mountpoint while mounted or being unmounted; null otherwise.</summary>
    public string? Mountpoint => _state == MountState.None ? null : _mountpoint;

    /// <summary>Mounts the filesystem on <paramref name="mountpoint"/>, an existing directory.</summary>
    /// <exception cref="FuseException">The mount failed.</exception>
    public void Mount(string mountpoint)
    {
        ArgumentException.ThrowIfNullOrEmpty(mountpoint);
        var path = Path.GetFullPath(mountpoint);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_se == 0, this);
            if (_state != MountState.None || _ran)
            {
                throw new InvalidOperationException("A session mounts once.");
            }

            if (!Directory.Exists(path))
            {
                throw new FuseException($"Cannot mount on {path}: not an accessible directory.");
            }

            if (Native.fuse_session_mount(_se, path) != 0)
            {
                throw new FuseException($"fuse_session_mount failed on {path}; libfuse wrote the reason to standard error.");
            }

            _mountpoint = path;
            _state = MountState.Mounted;
        }
    }

    /// <summary>
    /// Serves requests on up to <paramref name="maxThreads"/> libfuse threads until the filesystem
    /// is unmounted or <see cref="Exit"/> is called, then releases the mount. Call once, after
    /// <see cref="Mount"/>.
    /// </summary>
    /// <returns>0 after an unmount or <see cref="Exit"/>; a negative errno when the loop failed or
    /// <see cref="FuseOperations.Init"/> threw (-EIO).</returns>
    public int Run(int maxThreads = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreads, 1);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_se == 0, this);
            if (_state == MountState.None || _ran)
            {
                throw new InvalidOperationException("Run needs a mounted session and runs once.");
            }

            _running = _ran = true;
            _loopIdle.Reset();
        }

        var result = 0;
        try
        {
            if (!Volatile.Read(ref _exitRequested))
            {
                var config = Native.fuse_loop_cfg_create();
                if (config == 0)
                {
                    throw new OutOfMemoryException("fuse_loop_cfg_create failed.");
                }

                try
                {
                    Native.fuse_loop_cfg_set_max_threads(config, (uint)maxThreads);
                    Native.fuse_loop_cfg_set_clone_fd(config, 0);
                    result = Native.fuse_session_loop_mt(_se, config);
                }
                finally
                {
                    Native.fuse_loop_cfg_destroy(config);
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                ReleaseMount();
                _running = false;
            }

            _loopIdle.Set();
        }

        return _initFailed ? -Errno.EIO : result;
    }

    /// <summary>
    /// Ends <see cref="Run"/> promptly, from any thread (a signal handler, another request):
    /// flags the session as exited and takes the mount away. As root (CAP_SYS_ADMIN) it first
    /// aborts the kernel connection with a forced unmount, so the loop ends even while files or
    /// working directories in the mount are in use, and requests still pending fail with ENOTCONN;
    /// otherwise it lazily unmounts with <c>fusermount3 -u -z</c>, and a loop blocked by such users
    /// ends when they let go. Idempotent.
    /// </summary>
    public void Exit()
    {
        lock (_gate)
        {
            _exitRequested = true;
            if (_se == 0)
            {
                return;
            }

            Native.fuse_session_exit(_se);
            if (_state == MountState.Mounted)
            {
                Detach(_mountpoint!);
            }
        }
    }

    /// <summary>
    /// Unmounts the filesystem. While <see cref="Run"/> is active this is <see cref="Exit"/>;
    /// otherwise it releases the mount at once. Idempotent.
    /// </summary>
    public void Unmount()
    {
        lock (_gate)
        {
            if (_running)
            {
                Exit();
            }
            else
            {
                ReleaseMount();
            }
        }
    }

    /// <summary>
    /// Asks the kernel to drop cached data of <paramref name="inode"/>: its attributes, and the
    /// page cache from <paramref name="offset"/> for <paramref name="length"/> bytes (0 = to the
    /// end; a negative offset drops only the attributes). With writeback caching this first
    /// waits for the inode's dirty pages to be written back.
    /// </summary>
    /// <returns>0, or a negative errno (-ENOENT when the kernel does not know the inode).</returns>
    public int NotifyInvalidateInode(ulong inode, long offset, long length)
    {
        var se = BeginNotify();
        try
        {
            return se == 0 ? -Errno.ENOTCONN : Native.fuse_lowlevel_notify_inval_inode(se, inode, offset, length);
        }
        finally
        {
            EndNotify();
        }
    }

    /// <summary>
    /// Asks the kernel to forget the name <paramref name="name"/> in <paramref name="parent"/>
    /// and the parent's attributes. Must not be called while answering, or while holding a lock
    /// needed to answer, a related operation (lookup, mknod, mkdir, symlink, link, create, unlink,
    /// rmdir, rename on <paramref name="parent"/>; setattr, xattr changes or readdir on the
    /// entry): the kernel holds the locks that operation took, and the call deadlocks.
    /// </summary>
    /// <returns>0, or a negative errno (-ENOENT when the kernel has no such entry cached).</returns>
    public int NotifyInvalidateEntry(ulong parent, ReadOnlySpan<byte> name)
    {
        var z = Native.NulTerminate(name, stackalloc byte[Native.NameScratch], out var rented);
        var se = BeginNotify();
        try
        {
            fixed (byte* cName = z)
            {
                return se == 0 ? -Errno.ENOTCONN : Native.fuse_lowlevel_notify_inval_entry(se, parent, cName, (nuint)name.Length);
            }
        }
        finally
        {
            EndNotify();
            Native.Return(rented);
        }
    }

    /// <summary>
    /// Tells the kernel that <paramref name="name"/> in <paramref name="parent"/>, naming
    /// <paramref name="child"/>, was deleted: as <see cref="NotifyInvalidateEntry"/> (with the
    /// same deadlock rule), and inotify watchers of the entry learn of the deletion.
    /// </summary>
    /// <returns>0, or a negative errno (-ENOENT when the kernel has no such entry cached).</returns>
    public int NotifyDelete(ulong parent, ulong child, ReadOnlySpan<byte> name)
    {
        var z = Native.NulTerminate(name, stackalloc byte[Native.NameScratch], out var rented);
        var se = BeginNotify();
        try
        {
            fixed (byte* cName = z)
            {
                return se == 0 ? -Errno.ENOTCONN : Native.fuse_lowlevel_notify_delete(se, parent, child, cName, (nuint)name.Length);
            }
        }
        finally
        {
            EndNotify();
            Native.Return(rented);
        }
    }

    /// <summary>
    /// Ends the loop if it runs (as <see cref="Exit"/>) and waits for it, unmounts, destroys the
    /// libfuse session (which calls <see cref="FuseOperations.Destroy"/> if the kernel had
    /// initialized it) and frees native resources. Requests must have been answered before.
    /// </summary>
    public void Dispose()
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        Interlocked.MemoryBarrier();
        Exit();
        _loopIdle.Wait();
        var spin = default(SpinWait);
        while (Volatile.Read(ref _notifying) != 0)
        {
            spin.SpinOnce();
        }

        lock (_gate)
        {
            if (_se == 0)
            {
                return;
            }

            ReleaseMount();
            Native.fuse_session_destroy(_se);
            _se = 0;
        }

        _self.Dispose();
        _loopIdle.Dispose();
    }

    /// <summary>
    /// The kernel lets a FUSE mount read ahead no further than its backing device's
    /// <c>read_ahead_kb</c>, which starts at 128 KiB whatever max_readahead the filesystem
    /// negotiates, and sends no larger reads. Root may raise it: to what the filesystem asked for,
    /// during INIT (answering it, the kernel keeps the smaller of the two). Others keep the default.
    /// </summary>
    private void RaiseReadahead(uint bytes)
    {
        if (_mountpoint is null || MountTable.DeviceAt(_mountpoint) is not { } device) return;
        var setting = $"/sys/class/bdi/{device}/read_ahead_kb";
        var kib = bytes / 1024;
        try
        {
            if (uint.Parse(File.ReadAllText(setting).Trim(), CultureInfo.InvariantCulture) < kib)
                File.WriteAllText(setting, kib.ToString(CultureInfo.InvariantCulture));
        }
        catch (UnauthorizedAccessException)
        {
            // Not root: reads stay at the kernel's default size.
        }
        catch (Exception e) when (e is IOException or FormatException)
        {
            Log($"Could not raise the readahead of {_mountpoint} to {kib} KiB in {setting}: {e.Message}");
        }
    }

    private void Log(string message)
    {
        try
        {
            _log?.Invoke(message);
        }
        catch (Exception)
        {
            // A failing logger must not take a libfuse thread (and so the process) down with it.
        }
    }

    private void Detach(string mountpoint)
    {
        if (Native.umount2(mountpoint, Native.MNT_FORCE) == 0)
        {
            _state = MountState.Detached;
            return;
        }

        var error = Marshal.GetLastPInvokeError();
        var detached = error switch
        {
            // The connection is aborted; something still uses the mount, so take it out lazily.
            Errno.EBUSY => Native.umount2(mountpoint, Native.MNT_DETACH) == 0,
            Errno.EPERM => Fusermount(mountpoint),
            _ => false,
        };
        if (detached)
        {
            _state = MountState.Detached;
        }
        else
        {
            Log($"Could not unmount {mountpoint} (errno {error}); it is released when the loop ends.");
        }
    }

    private bool Fusermount(string mountpoint)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("fusermount3", ["-u", "-q", "-z", "--", mountpoint]) { UseShellExecute = false })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Log($"Could not run fusermount3 -u -z {mountpoint}: {e.Message}");
            return false;
        }
    }

    // Only once the loop no longer uses the device fd: fuse_session_unmount closes it (and, when
    // the kernel mount still exists, unmounts lazily; when it is gone it does nothing more).
    private void ReleaseMount()
    {
        if (_state != MountState.None)
        {
            Native.fuse_session_unmount(_se);
            _state = MountState.None;
            _mountpoint = null;
        }
    }

    private nint BeginNotify()
    {
        Interlocked.Increment(ref _notifying);
        return _closing || _state != MountState.Mounted ? 0 : _se;
    }

    private void EndNotify() => Interlocked.Decrement(ref _notifying);

    private static List<string> BuildArguments(IReadOnlyList<string> options)
    {
        var arguments = new List<string> { Path.GetFileName(Environment.ProcessPath) ?? "fuse" };
        var mountOptions = new List<string>();
        foreach (var option in options)
        {
            if (option == "debug")
            {
                arguments.Add("-d");
            }
            else
            {
                // fuse_opt splits -o at commas and lets a backslash quote the next character.
                mountOptions.Add(option.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(",", "\\,", StringComparison.Ordinal));
            }
        }

        if (mountOptions.Count > 0)
        {
            arguments.Add("-o");
            arguments.Add(string.Join(',', mountOptions));
        }

        return arguments;
    }

    private static nint NewSession(List<string> arguments, LowLevelOps* ops, nint userdata)
    {
        var argv = (byte**)NativeMemory.AllocZeroed((nuint)(arguments.Count + 1), (nuint)sizeof(byte*));
        try
        {
            for (var i = 0; i < arguments.Count; i++)
            {
                argv[i] = (byte*)Marshal.StringToCoTaskMemUTF8(arguments[i]);
            }

            var args = new FuseArgs { Argc = arguments.Count, Argv = argv };
            var se = Native.fuse_session_new(&args, ops, (nuint)sizeof(LowLevelOps), userdata);

            // Option parsing replaced args with a copy libfuse allocated; ours are freed below.
            Native.fuse_opt_free_args(&args);
            return se;
        }
        finally
        {
            for (var i = 0; i < arguments.Count; i++)
            {
                Marshal.FreeCoTaskMem((nint)argv[i]);
            }

            NativeMemory.Free(argv);
        }
    }
}
