using System.Collections.Frozen;
using System.Reflection;

namespace TruckeeFs.Testing.Posix;

public static partial class Sys
{
    // Linux errno values. They live on Sys rather than in an Errno class of their own so that a
    // TruckeeFs.Errno in the engine can never shadow them in test code under TruckeeFs.* namespaces.
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such file or directory.</summary>
    public const int ENOENT = 2;
    /// <summary>No such process.</summary>
    public const int ESRCH = 3;
    /// <summary>Interrupted system call.</summary>
    public const int EINTR = 4;
    /// <summary>I/O error.</summary>
    public const int EIO = 5;
    /// <summary>No such device or address.</summary>
    public const int ENXIO = 6;
    /// <summary>Bad file descriptor.</summary>
    public const int EBADF = 9;
    /// <summary>Try again; also EWOULDBLOCK.</summary>
    public const int EAGAIN = 11;
    /// <summary>Out of memory.</summary>
    public const int ENOMEM = 12;
    /// <summary>Permission denied.</summary>
    public const int EACCES = 13;
    /// <summary>Device or resource busy.</summary>
    public const int EBUSY = 16;
    /// <summary>File exists.</summary>
    public const int EEXIST = 17;
    /// <summary>Cross-device link.</summary>
    public const int EXDEV = 18;
    /// <summary>No such device.</summary>
    public const int ENODEV = 19;
    /// <summary>Not a directory.</summary>
    public const int ENOTDIR = 20;
    /// <summary>Is a directory.</summary>
    public const int EISDIR = 21;
    /// <summary>Invalid argument.</summary>
    public const int EINVAL = 22;
    /// <summary>Too many open files.</summary>
    public const int EMFILE = 24;
    /// <summary>File too large.</summary>
    public const int EFBIG = 27;
    /// <summary>No space left on device.</summary>
    public const int ENOSPC = 28;
    /// <summary>Illegal seek.</summary>
    public const int ESPIPE = 29;
    /// <summary>Read-only filesystem.</summary>
    public const int EROFS = 30;
    /// <summary>Too many links.</summary>
    public const int EMLINK = 31;
    /// <summary>Result too large for the buffer (xattrs, readlink).</summary>
    public const int ERANGE = 34;
    /// <summary>Resource deadlock would occur.</summary>
    public const int EDEADLK = 35;
    /// <summary>File name too long.</summary>
    public const int ENAMETOOLONG = 36;
    /// <summary>No locks available.</summary>
    public const int ENOLCK = 37;
    /// <summary>Function not implemented.</summary>
    public const int ENOSYS = 38;
    /// <summary>Directory not empty.</summary>
    public const int ENOTEMPTY = 39;
    /// <summary>Too many levels of symbolic links.</summary>
    public const int ELOOP = 40;
    /// <summary>No data available; also ENOATTR for xattrs.</summary>
    public const int ENODATA = 61;
    /// <summary>Operation not supported.</summary>
    public const int EOPNOTSUPP = 95;
    /// <summary>Transport endpoint is not connected (a FUSE mount whose daemon died).</summary>
    public const int ENOTCONN = 107;
    /// <summary>Connection timed out.</summary>
    public const int ETIMEDOUT = 110;
    /// <summary>Stale file handle.</summary>
    public const int ESTALE = 116;

    private static readonly FrozenDictionary<int, string> ErrnoNames = typeof(Sys)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(int) && f.Name.StartsWith('E'))
        .ToFrozenDictionary(f => (int)f.GetRawConstantValue()!, f => f.Name);

    /// <summary>"ENOENT" for 2, "OK" for 0, "errno 1234" for values this class does not name: for messages.</summary>
    public static string ErrnoName(int errno) => errno == 0 ? "OK" : ErrnoNames.GetValueOrDefault(errno, $"errno {errno}");
}
