using System.Runtime.InteropServices;

namespace TruckeeFs.Testing.Servers;

/// <summary>The libc calls the fixtures need and .NET does not expose (a graceful SIGTERM, the effective uid).</summary>
internal static partial class Libc
{
    public const int SigTerm = 15;
    public const int SigKill = 9;
    public const int SigCont = 18;
    public const int SigStop = 19;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    public static bool IsRoot => GetEffectiveUserId() == 0;
}
