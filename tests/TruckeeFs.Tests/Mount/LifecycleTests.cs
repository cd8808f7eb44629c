using System.Diagnostics;
using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Mount;

/// <summary>Starting, stopping, crashing and remounting the real executable.</summary>
public sealed class LifecycleTests
{
    [Fact]
    public async Task Data_survives_unmount_and_mount_byte_for_byte()
    {
        using var data = TempDirectory.Create("life-data");
        var options = new TruckeeFsMountOptions { DataDir = data.Path, ExtraArgs = ["--block-size", "64k"] };
        var files = Enumerable.Range(0, 20).ToDictionary(i => $"f{i}", i => RandomNumberGenerator.GetBytes(i * 37_000));
        await using (var mount = await TruckeeFsMount.StartAsync(options))
        {
            Directory.CreateDirectory($"{mount.Path}/sub");
            foreach (var (name, bytes) in files) File.WriteAllBytes($"{mount.Path}/sub/{name}", bytes);
            Assert.Equal(0, Sys.SetXattr($"{mount.Path}/sub", "user.kept", "yes"u8, 0));
            Assert.Equal(0, await mount.UnmountAsync());
        }
        await using (var again = await TruckeeFsMount.StartAsync(options))
        {
            foreach (var (name, bytes) in files) Assert.Equal(bytes, File.ReadAllBytes($"{again.Path}/sub/{name}"));
            Assert.Equal(0, Sys.GetXattr($"{again.Path}/sub", "user.kept", out var kept));
            Assert.Equal("yes"u8.ToArray(), kept);
            Assert.Equal(0, await again.UnmountAsync());
        }
    }

    [Theory]
    [InlineData(Sys.SIGTERM)]
    [InlineData(Sys.SIGINT)]
    public async Task A_signal_stops_cleanly_with_status_0_and_no_mount_left(int signal)
    {
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions());
        File.WriteAllText($"{mount.Path}/f", "written before the signal");
        Assert.Equal(0, await mount.SignalAsync(signal));
        Assert.False(TruckeeFsMount.IsMounted(mount.Path));
        Assert.Contains("unmounted cleanly", mount.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_written_but_never_closed_survives_a_kill_and_is_committed_by_the_next_mount()
    {
        using var data = TempDirectory.Create("crash-data");
        using var cache = TempDirectory.Create("crash-cache");
        var options = new TruckeeFsMountOptions { DataDir = data.Path, CacheDir = cache.Path, ExtraArgs = ["--block-size", "64k"] };
        var bytes = RandomNumberGenerator.GetBytes(300_000);
        await using (var mount = await TruckeeFsMount.StartAsync(options))
        {
            File.WriteAllBytes($"{mount.Path}/closed", bytes);
            // A writer that never closes: its data sits in the staging area when the mount dies.
            using var writer = Process.Start("sh", ["-c", $"exec 3>'{mount.Path}/open'; head -c 200000 /dev/zero >&3; sleep 60"]);
            await WaitUntilAsync(() => File.Exists($"{mount.Path}/open") && new FileInfo($"{mount.Path}/open").Length == 200_000);
            mount.Kill();
            writer.Kill();
        }
        await using var again = await TruckeeFsMount.StartAsync(options);
        Assert.Equal(bytes, File.ReadAllBytes($"{again.Path}/closed"));
        Assert.Equal(new byte[200_000], File.ReadAllBytes($"{again.Path}/open"));
        // The recovered versions are committed in the background, then nothing is left staged.
        await WaitUntilAsync(() => !Directory.EnumerateFiles(Path.Combine(cache.Path, "staging")).Any());
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public async Task On_the_local_store_a_close_commits_before_it_returns_and_a_kill_right_after_loses_nothing()
    {
        using var data = TempDirectory.Create("close-data");
        using var cache = TempDirectory.Create("close-cache");
        var options = new TruckeeFsMountOptions { DataDir = data.Path, CacheDir = cache.Path, ExtraArgs = ["--block-size", "64k"] };
        var files = Enumerable.Range(0, 10).ToDictionary(i => $"f{i}", i => RandomNumberGenerator.GetBytes(1 + i * 50_000));
        await using (var mount = await TruckeeFsMount.StartAsync(options))
        {
            foreach (var (name, bytes) in files)
            {
                File.WriteAllBytes($"{mount.Path}/{name}", bytes);
                // Nothing waits for a background upload: no journal entry, no staged block.
                Assert.Empty(Directory.EnumerateFiles(Path.Combine(cache.Path, "staging")));
            }
            mount.Kill();
        }
        await using var again = await TruckeeFsMount.StartAsync(options);
        foreach (var (name, bytes) in files) Assert.Equal(bytes, File.ReadAllBytes($"{again.Path}/{name}"));
        Assert.Equal(0, await again.UnmountAsync());
    }

    [Fact]
    public void A_missing_mount_point_is_a_clear_error()
    {
        var (status, output) = RunCli("mount", "/nonexistent/truckeefs-mountpoint");
        Assert.Equal(1, status);
        Assert.Contains("does not exist", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_non_empty_mount_point_is_a_clear_error()
    {
        using var dir = TempDirectory.Create("nonempty");
        File.WriteAllText($"{dir.Path}/occupied", "");
        var (status, output) = RunCli("mount", dir.Path);
        Assert.Equal(1, status);
        Assert.Contains("is not empty", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_mount_point_already_mounted_is_a_clear_error()
    {
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions());
        var (status, output) = RunCli("mount", mount.Path);
        Assert.Equal(1, status);
        Assert.Contains("already a mount point", output, StringComparison.Ordinal);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public void A_bad_value_names_the_key_the_value_and_its_source_and_exits_2()
    {
        using var dir = TempDirectory.Create("badvalue");
        var (status, output) = RunCli("mount", dir.Path, "--block-size", "huge");
        Assert.Equal(2, status);
        Assert.Contains("block_size", output, StringComparison.Ordinal);
        Assert.Contains("'huge'", output, StringComparison.Ordinal);
        Assert.Contains("--block-size", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_mount_of_the_same_data_directory_is_refused()
    {
        using var data = TempDirectory.Create("shared-data");
        using var second = TempDirectory.Create("second-mnt");
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { DataDir = data.Path });
        var (status, output) = RunCli("mount", second.Path, "--data-dir", data.Path);
        Assert.Equal(1, status);
        Assert.Contains("in use by another truckeefs", output, StringComparison.Ordinal);
        Assert.False(TruckeeFsMount.IsMounted(second.Path));
        Assert.Equal(0, await mount.UnmountAsync());
    }

    private static (int Status, string Output) RunCli(params string[] arguments)
    {
        var start = new ProcessStartInfo(TruckeeFsMountOptions.DefaultExecutable, arguments)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        start.Environment["XDG_DATA_HOME"] = Directory.CreateTempSubdirectory("truckeefs-xdg-").FullName;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(30_000), "truckeefs did not exit");
        return (process.ExitCode, output.Result + error);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(50);
        }
    }
}
