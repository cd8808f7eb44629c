using System.Runtime.InteropServices;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>
/// The compatibility self-test: can this host run TruckeeFS? Linux, the FUSE device, the
/// fusermount3 helper (unprivileged mounts and every unmount use it), libfuse 3.12 or newer
/// (the binding's loop configuration API), and FUSE in the kernel. The kernel's protocol
/// version is only told at mount time; the mount reports it then.
/// </summary>
internal static partial class CompatibilityTest
{
    private const string FuseDevice = "/dev/fuse";
    private static readonly Version MinimumLibfuse = new(3, 12);

    public static SelfTestResult Run()
    {
        if (!OperatingSystem.IsLinux()) return Fail($"TruckeeFS runs on Linux only, not {RuntimeInformation.OSDescription}");
        if (!File.Exists(FuseDevice)) return Fail($"{FuseDevice} does not exist: load the module (modprobe fuse) or install fuse3");
        if (access(FuseDevice, ReadWrite) != 0) return Fail($"{FuseDevice} is not readable and writable by this user (errno {Marshal.GetLastPInvokeError()})");
        if (!KernelHasFuse()) return Fail("the kernel lists no fuse filesystem in /proc/filesystems: load the module (modprobe fuse)");
        if (FindOnPath("fusermount3") is not { } fusermount) return Fail("fusermount3 is not on the PATH: install fuse3");
        string version;
        try
        {
            version = Marshal.PtrToStringUTF8(fuse_pkgversion()) ?? "";
        }
        catch (DllNotFoundException)
        {
            return Fail("libfuse3.so.3 cannot be loaded: install libfuse3-3 (fuse3)");
        }
        if (!Version.TryParse(version, out var parsed) || parsed < MinimumLibfuse)
            return Fail($"libfuse {version} is older than {MinimumLibfuse}: install fuse3 {MinimumLibfuse} or newer");
        return new SelfTestResult("compatibility", true, $"Linux {Environment.OSVersion.Version}, {FuseDevice}, {fusermount}, libfuse {version}, FUSE in the kernel");
    }

    private static SelfTestResult Fail(string detail) => new("compatibility", false, detail);

    private static bool KernelHasFuse() =>
        File.ReadLines("/proc/filesystems").Any(line => line.Split('\t', StringSplitOptions.TrimEntries).LastOrDefault() == "fuse");

    /// <summary>The first executable file named <paramref name="name"/> in a PATH folder, or null.</summary>
    internal static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, name))
            .FirstOrDefault(path => File.Exists(path) && access(path, Execute) == 0);

    private const int ReadWrite = 6;
    private const int Execute = 1;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);

    [LibraryImport("libfuse3.so.3")]
    private static partial nint fuse_pkgversion();
}
