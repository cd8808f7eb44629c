namespace TruckeeFs.Fuse;

/// <summary>
/// Linux errno values (x86-64 and every other Linux architecture but Alpha, MIPS, PA-RISC and
/// SPARC), positive as <see cref="FuseRequest.ReplyError"/> wants them. Notifications return
/// them negated.
/// </summary>
public static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such file or directory.</summary>
    public const int ENOENT = 2;
    /// <summary>Interrupted system call.</summary>
    public const int EINTR = 4;
    /// <summary>Input/output error.</summary>
    public const int EIO = 5;
    /// <summary>No such device or address.</summary>
    public const int ENXIO = 6;
    /// <summary>Argument list too long.</summary>
    public const int E2BIG = 7;
    /// <summary>Bad file descriptor.</summary>
    public const int EBADF = 9;
    /// <summary>Resource temporarily unavailable.</summary>
    public const int EAGAIN = 11;
    /// <summary>Cannot allocate memory.</summary>
    public const int ENOMEM = 12;
    /// <summary>Permission denied.</summary>
    public const int EACCES = 13;
    /// <summary>Bad address.</summary>
    public const int EFAULT = 14;
    /// <summary>Device or resource busy.</summary>
    public const int EBUSY = 16;
    /// <summary>File exists.</summary>
    public const int EEXIST = 17;
    /// <summary>Invalid cross-device link.</summary>
    public const int EXDEV = 18;
    /// <summary>No such device.</summary>
    public const int ENODEV = 19;
    /// <summary>Not a directory.</summary>
    public const int ENOTDIR = 20;
    /// <summary>Is a directory.</summary>
    public const int EISDIR = 21;
    /// <summary>Invalid argument.</summary>
    public const int EINVAL = 22;
    /// <summary>File too large.</summary>
    public const int EFBIG = 27;
    /// <summary>No space left on device.</summary>
    public const int ENOSPC = 28;
    /// <summary>Illegal seek.</summary>
    public const int ESPIPE = 29;
    /// <summary>Read-only file system.</summary>
    public const int EROFS = 30;
    /// <summary>Too many links.</summary>
    public const int EMLINK = 31;
    /// <summary>Numerical result out of range; also "buffer too small" for xattrs.</summary>
    public const int ERANGE = 34;
    /// <summary>File name too long.</summary>
    public const int ENAMETOOLONG = 36;
    /// <summary>Function not implemented.</summary>
    public const int ENOSYS = 38;
    /// <summary>Directory not empty.</summary>
    public const int ENOTEMPTY = 39;
    /// <summary>Too many levels of symbolic links.</summary>
    public const int ELOOP = 40;
    /// <summary>No data available; the "no such attribute" answer of getxattr/removexattr.</summary>
    public const int ENODATA = 61;
    /// <summary>Operation not supported.</summary>
    public const int ENOTSUP = 95;
    /// <summary>Operation not supported (same value as <see cref="ENOTSUP"/> on Linux).</summary>
    public const int EOPNOTSUPP = 95;
    /// <summary>Transport endpoint is not connected.</summary>
    public const int ENOTCONN = 107;
    /// <summary>Connection timed out.</summary>
    public const int ETIMEDOUT = 110;
    /// <summary>Stale file handle.</summary>
    public const int ESTALE = 116;
}
