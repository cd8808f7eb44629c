using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Posix;

/// <summary>
/// libc system calls for tests that drive a filesystem the way programs do. Every call returns 0
/// on success or the POSITIVE errno on failure and never throws for a filesystem answer (only for
/// a bug in the caller, such as a path with a NUL byte); results come back through out
/// parameters. Paths are <see cref="PosixPath"/>: a string (UTF-8) or raw bytes.
/// Layouts are those of x86-64 glibc (Debian bookworm, glibc 2.36).
/// </summary>
public static unsafe partial class Sys
{
    /// <summary>Size of x86-64 <c>struct stat</c>.</summary>
    internal const int StatSize = 144;

    /// <summary>open(2). <see cref="O_CLOEXEC"/> is always added so descriptors never leak into child processes (fusermount3, the filesystem daemon) and keep a mount busy.</summary>
    public static int Open(PosixPath path, int flags, uint mode, out int fd)
    {
        fixed (byte* p = path.Terminated)
        {
            fd = open(p, flags | O_CLOEXEC, mode);
        }

        return fd >= 0 ? 0 : LastErrno(ref fd);
    }

    /// <summary>open(2) without a creation mode.</summary>
    public static int Open(PosixPath path, int flags, out int fd) => Open(path, flags, 0, out fd);

    /// <summary>close(2).</summary>
    public static int Close(int fd) => Check(close(fd));

    /// <summary>read(2) into <paramref name="buffer"/>; <paramref name="count"/> is 0 at end of file.</summary>
    public static int Read(int fd, Span<byte> buffer, out int count)
    {
        fixed (byte* p = buffer)
        {
            return CheckCount(read(fd, p, (nuint)buffer.Length), out count);
        }
    }

    /// <summary>write(2).</summary>
    public static int Write(int fd, ReadOnlySpan<byte> data, out int count)
    {
        fixed (byte* p = data)
        {
            return CheckCount(write(fd, p, (nuint)data.Length), out count);
        }
    }

    /// <summary>pread(2): read at <paramref name="offset"/> without moving the file position.</summary>
    public static int PRead(int fd, Span<byte> buffer, long offset, out int count)
    {
        fixed (byte* p = buffer)
        {
            return CheckCount(pread(fd, p, (nuint)buffer.Length, offset), out count);
        }
    }

    /// <summary>pwrite(2): write at <paramref name="offset"/> (at the end under O_APPEND, as Linux does).</summary>
    public static int PWrite(int fd, ReadOnlySpan<byte> data, long offset, out int count)
    {
        fixed (byte* p = data)
        {
            return CheckCount(pwrite(fd, p, (nuint)data.Length, offset), out count);
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or end of file; <paramref name="count"/> is what was read.</summary>
    public static int PReadFully(int fd, Span<byte> buffer, long offset, out int count)
    {
        count = 0;
        while (count < buffer.Length)
        {
            var errno = PRead(fd, buffer[count..], offset + count, out var n);
            if (errno != 0)
            {
                return errno;
            }

            if (n == 0)
            {
                break;
            }

            count += n;
        }

        return 0;
    }

    /// <summary>fsync(2).</summary>
    public static int Fsync(int fd) => Check(fsync(fd));

    /// <summary>fdatasync(2).</summary>
    public static int Fdatasync(int fd) => Check(fdatasync(fd));

    /// <summary>ftruncate(2).</summary>
    public static int Ftruncate(int fd, long length) => Check(ftruncate(fd, length));

    /// <summary>truncate(2).</summary>
    public static int Truncate(PosixPath path, long length)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(truncate(p, length));
        }
    }

    /// <summary>lseek(2), including <see cref="SEEK_DATA"/> and <see cref="SEEK_HOLE"/>.</summary>
    public static int LSeek(int fd, long offset, int whence, out long position)
    {
        position = lseek(fd, offset, whence);
        return position >= 0 ? 0 : LastErrno(ref position);
    }

    /// <summary>fallocate(2) with <paramref name="mode"/> 0 or a combination of the FALLOC_FL_* flags.</summary>
    public static int Fallocate(int fd, int mode, long offset, long length) => Check(fallocate(fd, mode, offset, length));

    /// <summary>
    /// copy_file_range(2). A null offset means "use and advance the descriptor's position";
    /// a given offset is used and the descriptor's position is left alone.
    /// </summary>
    public static int CopyFileRange(int fdIn, long? offsetIn, int fdOut, long? offsetOut, long length, out long copied)
    {
        var inOffset = offsetIn.GetValueOrDefault();
        var outOffset = offsetOut.GetValueOrDefault();
        copied = copy_file_range(fdIn, offsetIn.HasValue ? &inOffset : null, fdOut, offsetOut.HasValue ? &outOffset : null, (nuint)length, 0);
        return copied >= 0 ? 0 : LastErrno(ref copied);
    }

    /// <summary>stat(2): follows symlinks.</summary>
    public static int Stat(PosixPath path, out StatInfo info) => StatCall(path, follow: true, out info);

    /// <summary>lstat(2): a symlink itself.</summary>
    public static int LStat(PosixPath path, out StatInfo info) => StatCall(path, follow: false, out info);

    /// <summary>fstat(2).</summary>
    public static int FStat(int fd, out StatInfo info)
    {
        var buffer = stackalloc byte[StatSize];
        var errno = Check(fstat(fd, buffer));
        info = errno == 0 ? DecodeStat(new ReadOnlySpan<byte>(buffer, StatSize)) : default;
        return errno;
    }

    /// <summary>statvfs(3).</summary>
    public static int StatVfs(PosixPath path, out StatVfsInfo info)
    {
        // struct statvfs on x86-64: eleven unsigned longs, then int __f_spare[6]: 112 bytes.
        var buffer = stackalloc ulong[14];
        int errno;
        fixed (byte* p = path.Terminated)
        {
            errno = Check(statvfs(p, buffer));
        }

        info = errno == 0
            ? new StatVfsInfo(buffer[0], buffer[1], buffer[2], buffer[3], buffer[4], buffer[5], buffer[6], buffer[7], buffer[8], buffer[9], buffer[10])
            : default;
        return errno;
    }

    /// <summary>mkdir(2); the process umask applies.</summary>
    public static int Mkdir(PosixPath path, uint mode)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(mkdir(p, mode));
        }
    }

    /// <summary>rmdir(2).</summary>
    public static int Rmdir(PosixPath path)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(rmdir(p));
        }
    }

    /// <summary>unlink(2).</summary>
    public static int Unlink(PosixPath path)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(unlink(p));
        }
    }

    /// <summary>link(2): <paramref name="newPath"/> becomes another name of <paramref name="existing"/>.</summary>
    public static int Link(PosixPath existing, PosixPath newPath)
    {
        fixed (byte* a = existing.Terminated)
        fixed (byte* b = newPath.Terminated)
        {
            return Check(link(a, b));
        }
    }

    /// <summary>symlink(2): creates <paramref name="linkPath"/> pointing at <paramref name="target"/> (stored verbatim).</summary>
    public static int Symlink(PosixPath target, PosixPath linkPath)
    {
        fixed (byte* a = target.Terminated)
        fixed (byte* b = linkPath.Terminated)
        {
            return Check(symlink(a, b));
        }
    }

    /// <summary>readlink(2): the target's bytes, however long.</summary>
    public static int ReadLink(PosixPath path, out byte[] target)
    {
        // readlink truncates silently, so a full buffer means "maybe longer": grow and retry.
        fixed (byte* p = path.Terminated)
        {
            for (var size = 256; ; size *= 2)
            {
                var buffer = new byte[size];
                nint n;
                fixed (byte* b = buffer)
                {
                    n = readlink(p, b, (nuint)size);
                }

                if (n < 0)
                {
                    target = [];
                    return Marshal.GetLastPInvokeError();
                }

                if (n < size)
                {
                    target = buffer[..(int)n];
                    return 0;
                }
            }
        }
    }

    /// <summary>mknod(2): <paramref name="mode"/> holds the type (S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK) and permissions.</summary>
    public static int Mknod(PosixPath path, uint mode, ulong device)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(mknod(p, mode, device));
        }
    }

    /// <summary>glibc's makedev (an inline function there, so reimplemented here).</summary>
    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000u) << 32) | ((ulong)(major & 0xfffu) << 8) | ((ulong)(minor & 0xffffff00u) << 12) | (minor & 0xffu);

    /// <summary>glibc's major().</summary>
    public static uint Major(ulong device) => (uint)(((device >> 32) & 0xfffff000u) | ((device >> 8) & 0xfffu));

    /// <summary>glibc's minor().</summary>
    public static uint Minor(ulong device) => (uint)(((device >> 12) & 0xffffff00u) | (device & 0xffu));

    /// <summary>rename(2).</summary>
    public static int Rename(PosixPath oldPath, PosixPath newPath)
    {
        fixed (byte* a = oldPath.Terminated)
        fixed (byte* b = newPath.Terminated)
        {
            return Check(rename(a, b));
        }
    }

    /// <summary>chmod(2).</summary>
    public static int Chmod(PosixPath path, uint mode)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(chmod(p, mode));
        }
    }

    /// <summary>chown(2); uint.MaxValue leaves an id unchanged.</summary>
    public static int Chown(PosixPath path, uint uid, uint gid)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(chown(p, uid, gid));
        }
    }

    /// <summary>lchown(2): a symlink itself.</summary>
    public static int LChown(PosixPath path, uint uid, uint gid)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(lchown(p, uid, gid));
        }
    }

    /// <summary>utimensat(2) relative to the current directory; <paramref name="flags"/> may be <see cref="AT_SYMLINK_NOFOLLOW"/>.</summary>
    public static int Utimensat(PosixPath path, Timespec atime, Timespec mtime, int flags = 0)
    {
        var times = stackalloc long[4] { atime.Seconds, atime.Nanoseconds, mtime.Seconds, mtime.Nanoseconds };
        fixed (byte* p = path.Terminated)
        {
            return Check(utimensat(AT_FDCWD, p, times, flags));
        }
    }

    /// <summary>access(2) with <see cref="F_OK"/> or a combination of R_OK, W_OK, X_OK.</summary>
    public static int Access(PosixPath path, int mode)
    {
        fixed (byte* p = path.Terminated)
        {
            return Check(access(p, mode));
        }
    }

    /// <summary>sync(2): always succeeds.</summary>
    public static void Sync() => sync();

    /// <summary>kill(2).</summary>
    public static int Kill(int pid, int signal) => Check(kill(pid, signal));

    private static int StatCall(PosixPath path, bool follow, out StatInfo info)
    {
        var buffer = stackalloc byte[StatSize];
        int errno;
        fixed (byte* p = path.Terminated)
        {
            errno = Check(follow ? stat(p, buffer) : lstat(p, buffer));
        }

        info = errno == 0 ? DecodeStat(new ReadOnlySpan<byte>(buffer, StatSize)) : default;
        return errno;
    }

    /// <summary>Decodes x86-64 <c>struct stat</c>: dev 0, ino 8, nlink 16 (8 bytes), mode 24, uid 28, gid 32, rdev 40, size 48, blksize 56, blocks 64, then three timespecs at 72, 88, 104.</summary>
    internal static StatInfo DecodeStat(ReadOnlySpan<byte> s) => new(
        Dev: BinaryPrimitives.ReadUInt64LittleEndian(s),
        Ino: BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
        Nlink: BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
        Mode: BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
        Uid: BinaryPrimitives.ReadUInt32LittleEndian(s[28..]),
        Gid: BinaryPrimitives.ReadUInt32LittleEndian(s[32..]),
        Rdev: BinaryPrimitives.ReadUInt64LittleEndian(s[40..]),
        Size: BinaryPrimitives.ReadInt64LittleEndian(s[48..]),
        BlkSize: BinaryPrimitives.ReadInt64LittleEndian(s[56..]),
        Blocks: BinaryPrimitives.ReadInt64LittleEndian(s[64..]),
        AtimeNs: TimespecNs(s[72..]),
        MtimeNs: TimespecNs(s[88..]),
        CtimeNs: TimespecNs(s[104..]));

    /// <summary>lstat(2) into a caller's buffer, so tests can see how many bytes libc writes.</summary>
    internal static int LStatRaw(PosixPath path, Span<byte> buffer)
    {
        fixed (byte* p = path.Terminated)
        fixed (byte* b = buffer)
        {
            return Check(lstat(p, b));
        }
    }

    private static long TimespecNs(ReadOnlySpan<byte> s) =>
        (BinaryPrimitives.ReadInt64LittleEndian(s) * 1_000_000_000L) + BinaryPrimitives.ReadInt64LittleEndian(s[8..]);

    private static int Check(int result) => result == 0 ? 0 : Marshal.GetLastPInvokeError();

    private static int CheckCount(nint result, out int count)
    {
        count = result >= 0 ? (int)result : 0;
        return result >= 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    private static int LastErrno(ref int result)
    {
        result = -1;
        return Marshal.GetLastPInvokeError();
    }

    private static int LastErrno(ref long result)
    {
        result = -1;
        return Marshal.GetLastPInvokeError();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int open(byte* path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pwrite(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ftruncate(int fd, long length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int truncate(byte* path, long length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long copy_file_range(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int stat(byte* path, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int lstat(byte* path, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(int fd, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int statvfs(byte* path, ulong* buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mkdir(byte* path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int rmdir(byte* path);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unlink(byte* path);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int link(byte* oldPath, byte* newPath);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int symlink(byte* target, byte* linkPath);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readlink(byte* path, byte* buffer, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mknod(byte* path, uint mode, ulong device);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int rename(byte* oldPath, byte* newPath);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int chmod(byte* path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int chown(byte* path, uint uid, uint gid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int lchown(byte* path, uint uid, uint gid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int utimensat(int dirFd, byte* path, long* times, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int access(byte* path, int mode);

    [LibraryImport("libc")]
    private static partial void sync();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
