using System.Runtime.InteropServices;

namespace TruckeeFs;

/// <summary>The few libc calls .NET does not expose. Each returns 0 or a positive errno.</summary>
internal static partial class Posix
{
    public static int Link(string existing, string created) => link(existing, created) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>rename(2), replacing <paramref name="target"/> if it exists; File.Move stats both names first.</summary>
    public static int Rename(string source, string target) => rename(source, target) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>
    /// flock(2) LOCK_EX|LOCK_NB on an open file: 0, or EWOULDBLOCK when another open file
    /// description holds the lock. The kernel releases it when the last descriptor closes, even
    /// if the process dies.
    /// </summary>
    public static int LockExclusively(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        const int LockExclusive = 2, LockNonBlocking = 4;
        return flock((int)file.DangerousGetHandle(), LockExclusive | LockNonBlocking) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>
    /// copy_file_range(2) of bytes [0, <paramref name="length"/>) of one file to the same offsets
    /// of another. The kernel copies page to page, without a pass through this process, and a
    /// filesystem that shares extents (XFS, btrfs) clones them instead of copying. Returns 0 (also
    /// when the source ends first), or the errno of the call that failed (EXDEV between
    /// filesystems, EINVAL or EOPNOTSUPP where the kernel cannot), <paramref name="copied"/>
    /// holding the bytes already done.
    /// </summary>
    public static int CopyFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle source, Microsoft.Win32.SafeHandles.SafeFileHandle target, long length, out long copied)
    {
        const int Interrupted = 4;
        copied = 0;
        while (copied < length)
        {
            long sourceOffset = copied, targetOffset = copied;
            var n = copy_file_range(source, ref sourceOffset, target, ref targetOffset, (nuint)(length - copied), 0);
            if (n < 0)
            {
                var error = Marshal.GetLastPInvokeError();
                if (error == Interrupted) continue;
                return error;
            }
            if (n == 0) break;
            copied += n;
        }
        return 0;
    }

    /// <summary>Capacity of the filesystem holding <paramref name="path"/>.</summary>
    public static (long FragmentSize, long Blocks, long BlocksFree, long BlocksAvailable) StatVfs(string path)
    {
        if (statvfs(path, out var buffer) != 0) return (4096, 0, 0, 0);
        return ((long)buffer.f_frsize, (long)buffer.f_blocks, (long)buffer.f_bfree, (long)buffer.f_bavail);
    }

    /// <summary>Sets the niceness of the calling thread only (Linux schedules threads one by one).</summary>
    public static int SetThreadNice(int nice) => setpriority(PrioProcess, (uint)gettid(), nice) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public static uint GetUid() => getuid();

    /// <summary>fsync(2) of a directory: makes the names created or renamed in it durable.</summary>
    public static int SyncDirectory(string path)
    {
        const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY
        var fd = open(path, ReadOnlyDirectory);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        var status = fsync(fd) == 0 ? 0 : Marshal.GetLastPInvokeError();
        _ = close(fd);
        return status;
    }

    public static uint GetGid() => getgid();

    /// <summary>
    /// posix_fadvise(2) POSIX_FADV_WILLNEED of a whole file: the kernel starts reading it into
    /// the page cache and returns at once.
    /// </summary>
    public static int ReadAhead(string path)
    {
        const int ReadOnlyCloseOnExec = 0x80000, WillNeed = 3;
        var fd = open(path, ReadOnlyCloseOnExec);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        // posix_fadvise returns the error number itself, not -1 and errno.
        var status = posix_fadvise(fd, 0, 0, WillNeed);
        _ = close(fd);
        return status;
    }

    private const int PrioProcess = 0;

    [LibraryImport("libc")]
    private static partial int gettid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, uint who, int priority);

    [LibraryImport("libc")]
    private static partial uint getuid();

    [LibraryImport("libc")]
    private static partial uint getgid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int posix_fadvise(int fd, long offset, long length, int advice);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldpath, string newpath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rename(string oldpath, string newpath);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint copy_file_range(
        Microsoft.Win32.SafeHandles.SafeFileHandle fdIn, ref long offIn, Microsoft.Win32.SafeHandles.SafeFileHandle fdOut, ref long offOut, nuint length, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statvfs(string path, out StatVfsBuffer buffer);

    /// <summary>glibc's struct statvfs on 64-bit Linux (112 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct StatVfsBuffer
    {
        public ulong f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_fsid, f_flag, f_namemax;
        private unsafe fixed int _spare[6];
    }
}
