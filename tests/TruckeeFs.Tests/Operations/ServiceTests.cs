using System.Net.Sockets;
using System.Text;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// Running as a service: the <c>mount.truckeefs</c> helper that mount(8) runs for an fstab line,
/// and the sd_notify readiness a <c>Type=notify</c> systemd unit waits for.
/// </summary>
public sealed class ServiceTests
{
    private static readonly string Helper = Path.Combine(FindRoot(), "contrib", "mount.truckeefs");

    [Fact]
    public async Task The_mount_helper_mounts_as_mount_8_calls_it_and_returns_once_ready()
    {
        await using var fs = new EmbeddedFilesystem();
        var mountpoint = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "..", "mnt")).FullName;
        try
        {
            var (status, output, error) = await RunHelperAsync("none", mountpoint, "-o", $"rw,_netdev,nofail,data_dir={fs.DataDir},cache_dir={fs.CacheDir},block_size=64k");
            Assert.True(status == 0, output + error);
            Assert.True(TruckeeFsMount.IsMounted(mountpoint));
            await File.WriteAllTextAsync(Path.Combine(mountpoint, "f"), "via fstab");
            Assert.Equal("via fstab", await File.ReadAllTextAsync(Path.Combine(mountpoint, "f")));
            (status, output, error) = await TruckeeFsCli.RunAsync(null, "umount", mountpoint);
            Assert.True(status == 0, output + error);
        }
        finally
        {
            if (TruckeeFsMount.IsMounted(mountpoint)) System.Diagnostics.Process.Start("fusermount3", ["-uz", mountpoint])!.WaitForExit();
        }
        Assert.False(TruckeeFsMount.IsMounted(mountpoint));
        await using var again = await fs.MountAsync();
        Assert.Equal("via fstab", await File.ReadAllTextAsync(Path.Combine(again.Path, "f")));
    }

    [Fact]
    public async Task The_mount_helper_rejects_options_it_cannot_honour_and_passes_bad_keys_on_to_validation()
    {
        await using var fs = new EmbeddedFilesystem();
        var (status, _, error) = await RunHelperAsync("none", fs.CacheDir, "-o", "ro");
        Assert.Equal(2, status);
        Assert.Contains("option 'ro' is not a TruckeeFS key=value", error, StringComparison.Ordinal);

        (status, _, error) = await RunHelperAsync("none", fs.CacheDir, "-o", "block_size=huge");
        Assert.Equal(2, status);
        Assert.Contains("block_size", error, StringComparison.Ordinal);
        Assert.Contains("huge", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_notify_service_hears_ready_once_the_mount_answers_and_stopping_when_it_stops()
    {
        await using var fs = new EmbeddedFilesystem();
        var socketPath = Path.Combine(fs.CacheDir, "..", "notify.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions
        {
            DataDir = fs.DataDir,
            CacheDir = fs.CacheDir,
            Environment = new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = socketPath },
        });

        var ready = await ReceiveAsync(socket);
        Assert.StartsWith("READY=1", ready, StringComparison.Ordinal);
        Assert.Contains($"MAINPID={mount.Process.Id}", ready, StringComparison.Ordinal);
        Assert.True(Directory.Exists(mount.Path) && TruckeeFsMount.IsMounted(mount.Path));
        Assert.Equal(0, await mount.UnmountAsync());
        Assert.Equal("STOPPING=1", await ReceiveAsync(socket));
    }

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var length = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    private static async Task<(int Status, string Output, string Error)> RunHelperAsync(params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Helper);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["TRUCKEEFS"] = TruckeeFsMountOptions.DefaultExecutable;
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "TruckeeFs.sln"))) return directory.FullName;
        throw new InvalidOperationException("TruckeeFs.sln not found above the test assembly");
    }
}
