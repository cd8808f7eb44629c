using System.Runtime.InteropServices;
using TruckeeFs.Fuse;

namespace TruckeeFs.Tests.Fuse;

/// <summary>The system calls the FUSE tests drive that .NET does not expose. Each returns 0/size or -errno.</summary>
internal static unsafe partial class Libc
{
    public const int XattrCreate = 1;

    public static int SetXattr(string path, string name, ReadOnlySpan<byte> value, int flags = 0)
    {
        fixed (byte* v = value)
        {
            return setxattr(path, name, v, (nuint)value.Length, flags) == 0 ? 0 : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>The value's size when <paramref name="buffer"/> is empty, else the bytes copied.</summary>
    public static long GetXattr(string path, string name, Span<byte> buffer)
    {
        fixed (byte* b = buffer)
        {
            var result = getxattr(path, name, b, (nuint)buffer.Length);
            return result >= 0 ? result : -Marshal.GetLastPInvokeError();
        }
    }

    public static int StatVfs(string path, out FuseStatVfs result)
    {
        fixed (FuseStatVfs* buf = &result)
        {
            return statvfs(path, buf) == 0 ? 0 : -Marshal.GetLastPInvokeError();
        }
    }

    public static int Stat(string path, out FuseStat result)
    {
        fixed (FuseStat* buf = &result)
        {
            return stat(path, buf) == 0 ? 0 : -Marshal.GetLastPInvokeError();
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statvfs(string path, FuseStatVfs* buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int stat(string path, FuseStat* buf);
}
