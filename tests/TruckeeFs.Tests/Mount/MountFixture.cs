using System.Diagnostics;
using TruckeeFs.Testing.Mounting;

namespace TruckeeFs.Tests.Mount;

/// <summary>
/// One TruckeeFS mount (embedded default, 64 KiB blocks so that small test files span several
/// blocks) shared by the tests of a class; each test works in a directory of its own.
/// </summary>
public sealed class MountFixture : IAsyncLifetime
{
    public const long BlockSize = 64 << 10;
    private TruckeeFsMount? _mount;
    private int _next;

    public TruckeeFsMount Mount => _mount ?? throw new InvalidOperationException("not mounted");

    /// <summary>A fresh, empty directory in the mount.</summary>
    public string NewDirectory(string name)
    {
        var path = Path.Combine(Mount.Path, $"{name}-{Interlocked.Increment(ref _next)}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>The objects of the local content store, by file name.</summary>
    public HashSet<string> ContentObjects() =>
        [.. Directory.EnumerateFiles(Path.Combine(Mount.DataDir, "contents"), "*", SearchOption.AllDirectories).Select(path => Path.GetFileName(path))];

    public async Task InitializeAsync() =>
        _mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["--block-size", "64k"] });

    public async Task DisposeAsync()
    {
        if (_mount is null) return;
        Assert.Equal(0, await _mount.UnmountAsync());
        await _mount.DisposeAsync();
    }

    /// <summary>Runs a shell command as the unprivileged user nobody (65534), returning its exit code and error output.</summary>
    public static (int ExitCode, string Error) RunAsNobody(string command)
    {
        var start = new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c", command])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error);
    }
}
