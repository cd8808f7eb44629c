using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Posix;

/// <summary>What of a file the kernel's page cache holds, for tests of readahead.</summary>
public static unsafe partial class Sys
{
    private const int PosixFadviseDontNeed = 4;
    private const int ProtRead = 1, MapShared = 1;

    /// <summary>Writes the file's pages back and drops them from the page cache (POSIX_FADV_DONTNEED).</summary>
    public static int DropFromPageCache(PosixPath path)
    {
        var status = Open(path, O_RDONLY, out var fd);
        if (status != 0) return status;
        try
        {
            if (fdatasync(fd) != 0) return Marshal.GetLastPInvokeError();
            // posix_fadvise returns the error number itself.
            return posix_fadvise(fd, 0, 0, PosixFadviseDontNeed);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>How many of the file's pages are in the page cache (mincore(2) of a mapping that touches none).</summary>
    public static int ResidentPages(PosixPath path, out long resident, out long pages)
    {
        resident = pages = 0;
        var status = Open(path, O_RDONLY, out var fd);
        if (status != 0) return status;
        try
        {
            status = FStat(fd, out var info);
            if (status != 0) return status;
            pages = (info.Size + 4095) / 4096;
            if (pages == 0) return 0;
            var map = mmap(null, (nuint)info.Size, ProtRead, MapShared, fd, 0);
            if (map == (void*)-1) return Marshal.GetLastPInvokeError();
            try
            {
                var vector = new byte[pages];
                fixed (byte* v = vector)
                {
                    if (mincore(map, (nuint)info.Size, v) != 0) return Marshal.GetLastPInvokeError();
                }
                resident = vector.Count(b => (b & 1) != 0);
                return 0;
            }
            finally
            {
                munmap(map, (nuint)info.Size);
            }
        }
        finally
        {
            close(fd);
        }
    }

    [LibraryImport("libc")]
    private static partial int posix_fadvise(int fd, long offset, long length, int advice);

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc")]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mincore(void* address, nuint length, byte* vector);
}
