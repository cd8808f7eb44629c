namespace TruckeeFs.Testing.Servers;

/// <summary>Finds the Debian server binaries on PATH, or in the sbin/bin folders PATH may omit for non-login shells.</summary>
internal static class ServerBinaries
{
    private static readonly string[] FallbackDirectories = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>The first of <paramref name="names"/> found; throws naming them and the Debian package otherwise.</summary>
    public static string Find(string debianPackage, params string[] names) =>
        TryFind(names) ?? throw new ServerStartException(
            $"None of {string.Join(", ", names)} was found on PATH or in {string.Join(", ", FallbackDirectories)}; install the Debian package {debianPackage}.");

    /// <summary>The first of <paramref name="names"/> found, or null.</summary>
    public static string? TryFind(params string[] names)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        var directories = path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(FallbackDirectories).Distinct().ToList();
        foreach (var name in names)
        {
            foreach (var directory in directories)
            {
                var candidate = Path.Combine(directory, name);
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }
}
