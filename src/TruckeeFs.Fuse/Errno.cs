namespace TruckeeFs.Fuse;

/// <summary>
/// The Linux errno values the binding itself answers or reports (x86-64 and every other Linux architecture but Alpha, MIPS, PA-RISC and
/// SPARC), positive as <see cref="FuseRequest.ReplyError"/> wants them. Notifications return
/// them negated. A filesystem brings its own table for the rest.
/// </summary>
public static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such file or directory.</summary>
    public const int ENOENT = 2;
    /// <summary>Input/output error.</summary>
    public const int EIO = 5;
    /// <summary>Device or resource busy.</summary>
    public const int EBUSY = 16;
    /// <summary>File exists.</summary>
    public const int EEXIST = 17;
    /// <summary>No such device.</summary>
    public const int ENODEV = 19;
    /// <summary>Numerical result out of range; also "buffer too small" for xattrs.</summary>
    public const int ERANGE = 34;
    /// <summary>Function not implemented.</summary>
    public const int ENOSYS = 38;
    /// <summary>No data available; the "no such attribute" answer of getxattr/removexattr.</summary>
    public const int ENODATA = 61;
    /// <summary>Transport endpoint is not connected.</summary>
    public const int ENOTCONN = 107;
}
