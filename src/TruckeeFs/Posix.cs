using System.Runtime.InteropServices;

namespace TruckeeFs;

/// <summary>The few libc calls .NET does not expose. Each returns 0 or a positive errno.</summary>
internal static partial class Posix
{
    public static int Link(string existing, string created) => link(existing, created) == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldpath, string newpath);
}
