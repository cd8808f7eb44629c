using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Posix;

public static unsafe partial class Sys
{
    /// <summary>The x86-64 system call number of renameat2, for C libraries older than glibc 2.28 that lack the wrapper.</summary>
    internal const long SYS_renameat2 = 316;

    /// <summary>True when the C library exports renameat2; otherwise the raw system call is made.</summary>
    internal static readonly bool HasRenameat2Wrapper =
        NativeLibrary.TryLoad("libc.so.6", out var libc) && NativeLibrary.TryGetExport(libc, "renameat2", out _);

    /// <summary>renameat2(2) relative to the current directory, with <paramref name="flags"/> 0, <see cref="RENAME_NOREPLACE"/> or <see cref="RENAME_EXCHANGE"/>.</summary>
    public static int RenameAt2(PosixPath oldPath, PosixPath newPath, uint flags) =>
        HasRenameat2Wrapper ? RenameAt2ViaWrapper(oldPath, newPath, flags) : RenameAt2ViaSyscall(oldPath, newPath, flags);

    internal static int RenameAt2ViaWrapper(PosixPath oldPath, PosixPath newPath, uint flags)
    {
        fixed (byte* a = oldPath.Terminated)
        fixed (byte* b = newPath.Terminated)
        {
            return Check(renameat2(AT_FDCWD, a, AT_FDCWD, b, flags));
        }
    }

    internal static int RenameAt2ViaSyscall(PosixPath oldPath, PosixPath newPath, uint flags)
    {
        fixed (byte* a = oldPath.Terminated)
        fixed (byte* b = newPath.Terminated)
        {
            // syscall(2) is variadic; on x86-64 its integer arguments travel in the same registers
            // as a fixed-argument call's, so a fixed signature is safe.
            return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int renameat2(int oldDirFd, byte* oldPath, int newDirFd, byte* newPath, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long oldDirFd, byte* oldPath, long newDirFd, byte* newPath, long flags);
}
