using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Posix;

public static unsafe partial class Sys
{
    /// <summary>flock(2) with LOCK_SH, LOCK_EX or LOCK_UN, optionally | LOCK_NB (EAGAIN on conflict).</summary>
    public static int Flock(int fd, int operation) => Check(flock(fd, operation));

    /// <summary>
    /// fcntl(2) record locks: <paramref name="command"/> is F_GETLK, F_SETLK, F_SETLKW or their
    /// F_OFD_* forms. F_GETLK rewrites <paramref name="fileLock"/> with the conflicting lock, or sets
    /// its type to <see cref="F_UNLCK"/>. POSIX (non-OFD) locks never conflict within one process.
    /// </summary>
    public static int FcntlLock(int fd, int command, ref FileLock fileLock)
    {
        fixed (FileLock* l = &fileLock)
        {
            // fcntl is variadic; its third argument travels in the same register either way on x86-64.
            return fcntl(fd, command, l) == -1 ? Marshal.GetLastPInvokeError() : 0;
        }
    }

    /// <summary>dup(2): a second descriptor sharing <paramref name="fd"/>'s open file description (and so its flock locks); -1 on failure.</summary>
    public static int Dup(int fd) => dup(fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, FileLock* fileLock);
}
