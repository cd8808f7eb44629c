using System.Runtime.InteropServices;
using System.Text;

namespace TruckeeFs.Testing.Posix;

public static unsafe partial class Sys
{
    /// <summary>setxattr(2) with <paramref name="flags"/> 0, <see cref="XATTR_CREATE"/> or <see cref="XATTR_REPLACE"/>.</summary>
    public static int SetXattr(PosixPath path, string name, ReadOnlySpan<byte> value, int flags) => SetXattrCall(path, name, value, flags, follow: true);

    /// <summary>lsetxattr(2): a symlink itself (Linux refuses user.* there with EPERM).</summary>
    public static int LSetXattr(PosixPath path, string name, ReadOnlySpan<byte> value, int flags) => SetXattrCall(path, name, value, flags, follow: false);

    /// <summary>
    /// getxattr(2) into <paramref name="buffer"/>: an empty buffer asks for the size, which comes
    /// back in <paramref name="length"/>; a buffer too small fails with <see cref="ERANGE"/>.
    /// </summary>
    public static int GetXattr(PosixPath path, string name, Span<byte> buffer, out int length) => GetXattrCall(path, name, buffer, follow: true, out length);

    /// <summary>lgetxattr(2) into <paramref name="buffer"/>, as <see cref="GetXattr(PosixPath, string, Span{byte}, out int)"/>.</summary>
    public static int LGetXattr(PosixPath path, string name, Span<byte> buffer, out int length) => GetXattrCall(path, name, buffer, follow: false, out length);

    /// <summary>getxattr(2) of the whole value (size query, then read).</summary>
    public static int GetXattr(PosixPath path, string name, out byte[] value) => GetWholeXattr(path, name, follow: true, out value);

    /// <summary>lgetxattr(2) of the whole value.</summary>
    public static int LGetXattr(PosixPath path, string name, out byte[] value) => GetWholeXattr(path, name, follow: false, out value);

    /// <summary>listxattr(2): the names, in the order the filesystem gave them.</summary>
    public static int ListXattr(PosixPath path, out string[] names) => ListXattrCall(path, follow: true, out names);

    /// <summary>llistxattr(2): the names on a symlink itself.</summary>
    public static int LListXattr(PosixPath path, out string[] names) => ListXattrCall(path, follow: false, out names);

    /// <summary>removexattr(2); <see cref="ENODATA"/> when absent.</summary>
    public static int RemoveXattr(PosixPath path, string name) => RemoveXattrCall(path, name, follow: true);

    /// <summary>lremovexattr(2).</summary>
    public static int LRemoveXattr(PosixPath path, string name) => RemoveXattrCall(path, name, follow: false);

    private static int SetXattrCall(PosixPath path, string name, ReadOnlySpan<byte> value, int flags, bool follow)
    {
        fixed (byte* p = path.Terminated)
        fixed (byte* n = Terminate(name))
        fixed (byte* v = value)
        {
            return Check(follow ? setxattr(p, n, v, (nuint)value.Length, flags) : lsetxattr(p, n, v, (nuint)value.Length, flags));
        }
    }

    private static int GetXattrCall(PosixPath path, string name, Span<byte> buffer, bool follow, out int length)
    {
        fixed (byte* p = path.Terminated)
        fixed (byte* n = Terminate(name))
        fixed (byte* b = buffer)
        {
            var result = follow ? getxattr(p, n, b, (nuint)buffer.Length) : lgetxattr(p, n, b, (nuint)buffer.Length);
            return CheckCount(result, out length);
        }
    }

    private static int GetWholeXattr(PosixPath path, string name, bool follow, out byte[] value)
    {
        // The value can change between the size query and the read (ERANGE): ask again.
        while (true)
        {
            value = [];
            var errno = GetXattrCall(path, name, [], follow, out var size);
            if (errno != 0)
            {
                return errno;
            }

            var buffer = new byte[size];
            errno = GetXattrCall(path, name, buffer, follow, out var length);
            if (errno == ERANGE)
            {
                continue;
            }

            if (errno == 0)
            {
                value = buffer[..length];
            }

            return errno;
        }
    }

    private static int ListXattrCall(PosixPath path, bool follow, out string[] names)
    {
        fixed (byte* p = path.Terminated)
        {
            while (true)
            {
                names = [];
                var size = follow ? listxattr(p, null, 0) : llistxattr(p, null, 0);
                if (size < 0)
                {
                    return Marshal.GetLastPInvokeError();
                }

                var buffer = new byte[size];
                nint length;
                fixed (byte* b = buffer)
                {
                    length = follow ? listxattr(p, b, (nuint)size) : llistxattr(p, b, (nuint)size);
                }

                if (length < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == ERANGE)
                    {
                        continue;
                    }

                    return errno;
                }

                // The list is NUL-terminated names back to back.
                names = Encoding.UTF8.GetString(buffer, 0, (int)length).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                return 0;
            }
        }
    }

    private static int RemoveXattrCall(PosixPath path, string name, bool follow)
    {
        fixed (byte* p = path.Terminated)
        fixed (byte* n = Terminate(name))
        {
            return Check(follow ? removexattr(p, n) : lremovexattr(p, n));
        }
    }

    private static byte[] Terminate(string text) => PosixPath.FromString(text).Terminated;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint getxattr(byte* path, byte* name, byte* value, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint lgetxattr(byte* path, byte* name, byte* value, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint listxattr(byte* path, byte* list, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint llistxattr(byte* path, byte* list, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int removexattr(byte* path, byte* name);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int lremovexattr(byte* path, byte* name);
}
