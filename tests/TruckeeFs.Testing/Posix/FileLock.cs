using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Posix;

/// <summary>
/// <c>struct flock</c> for fcntl record locks, laid out as on x86-64 glibc (32 bytes: l_type at 0,
/// l_whence at 2, l_start at 8, l_len at 16, l_pid at 24), so it is passed to libc as is.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct FileLock
{
    /// <summary>l_type: <see cref="Sys.F_RDLCK"/>, <see cref="Sys.F_WRLCK"/> or <see cref="Sys.F_UNLCK"/>.</summary>
    public short Type;

    /// <summary>l_whence: <see cref="Sys.SEEK_SET"/>, <see cref="Sys.SEEK_CUR"/> or <see cref="Sys.SEEK_END"/>.</summary>
    public short Whence;

    /// <summary>l_start: first byte of the range.</summary>
    public long Start;

    /// <summary>l_len: length of the range; 0 means "to the end of the file, however long".</summary>
    public long Length;

    /// <summary>l_pid: set by F_GETLK to the holder (-1 for an open-file-description lock); must be 0 for the OFD commands.</summary>
    public int Pid;

    /// <summary>A lock of <paramref name="type"/> over [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) from the start of the file.</summary>
    public static FileLock Range(short type, long start, long length) => new() { Type = type, Whence = Sys.SEEK_SET, Start = start, Length = length };
}
