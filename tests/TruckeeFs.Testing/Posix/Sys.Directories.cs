using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Posix;

public static unsafe partial class Sys
{
    /// <summary>
    /// opendir/readdir/closedir: every entry the filesystem returns, INCLUDING "." and ".." (a FUSE
    /// filesystem must produce them itself; the kernel does not add them), in the filesystem's order.
    /// Use <see cref="DirectoryEntry.IsDotOrDotDot"/> to drop them.
    /// </summary>
    public static int ReadDirectory(PosixPath path, out List<DirectoryEntry> entries)
    {
        entries = [];
        nint dir;
        fixed (byte* p = path.Terminated)
        {
            dir = opendir(p);
        }

        if (dir == 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        try
        {
            while (true)
            {
                // readdir returns NULL both at the end and on error; only errno tells them apart,
                // and the generated stub clears errno before the call.
                var entry = readdir64(dir);
                if (entry == null)
                {
                    return Marshal.GetLastPInvokeError();
                }

                // struct dirent64 on x86-64: d_ino 0, d_off 8, d_reclen 16, d_type 18, d_name 19.
                var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + 19);
                entries.Add(new DirectoryEntry(name.ToArray(), *(ulong*)entry, entry[18]));
            }
        }
        finally
        {
            _ = closedir(dir);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint opendir(byte* path);

    [LibraryImport("libc", SetLastError = true)]
    private static partial byte* readdir64(nint dir);

    [LibraryImport("libc")]
    private static partial int closedir(nint dir);
}
