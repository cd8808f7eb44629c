using System.Globalization;
using System.Text.RegularExpressions;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// <c>truckeefs umount</c> and <c>truckeefs mount -d</c> through the real executable: umount
/// returns only once the mount's process has committed and exited; a background mount returns
/// once the mount answers, or fails with the child's reason.
/// </summary>
public sealed partial class UmountAndBackgroundTests
{
    [Fact]
    public async Task Umount_flushes_unmounts_and_waits_for_the_process_to_exit()
    {
        await using var fs = new EmbeddedFilesystem();
        var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(1 << 20);
        await using (var mount = await fs.MountAsync())
        {
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "data"), data);
            // The embedded database belongs to the mount: status says so instead of calling it down.
            var (status, output, error) = await fs.RunAsync("status");
            Assert.True(status == 0, output + error);
            Assert.Contains($"held by the mount at {mount.Path} (pid {mount.Process.Id})", output, StringComparison.Ordinal);

            (status, output, error) = await TruckeeFsCli.RunAsync(null, "umount", mount.Path);
            Assert.True(status == 0, output + error + mount.Output);
            Assert.Contains($"is served by pid {mount.Process.Id}", error, StringComparison.Ordinal);
            Assert.Contains($"unmounted {mount.Path}; pid {mount.Process.Id} committed its changes and exited with status 0", error, StringComparison.Ordinal);
            Assert.True(mount.Process.HasExited, "umount returned before the mount's process exited");
            Assert.False(TruckeeFsMount.IsMounted(mount.Path));
            Assert.Contains("unmounted cleanly", mount.Output, StringComparison.Ordinal);
        }
        await using var again = await fs.MountAsync();
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(again.Path, "data")));
    }

    [Fact]
    public async Task Umount_of_a_busy_mount_or_of_no_mount_fails_with_the_reason()
    {
        await using var fs = new EmbeddedFilesystem();
        var (status, _, error) = await TruckeeFsCli.RunAsync(null, "umount", fs.CacheDir);
        Assert.Equal(1, status);
        Assert.Contains($"{fs.CacheDir} is not mounted", error, StringComparison.Ordinal);

        await using var mount = await fs.MountAsync();
        await using (var open = File.Create(Path.Combine(mount.Path, "open")))
        {
            (status, _, error) = await TruckeeFsCli.RunAsync(null, "umount", mount.Path);
            Assert.Equal(1, status);
            Assert.Contains($"fusermount3 -u {mount.Path} failed", error, StringComparison.Ordinal);
            Assert.True(TruckeeFsMount.IsMounted(mount.Path));
            Assert.False(mount.Process.HasExited);
        }
    }

    [Fact]
    public async Task A_killed_mount_is_not_listed_and_a_later_mount_removes_its_link()
    {
        await using var fs = new EmbeddedFilesystem();
        await using var killed = await fs.MountAsync();
        var link = TruckeeFs.Operations.MountStatus.LinkFor(killed.Path);
        Assert.True(File.Exists(link));
        // A killed mount cannot remove its link (a mount of a parallel test may prune it already).
        killed.Kill();
        var (status, output, error) = await TruckeeFsCli.RunAsync(null, "status");
        Assert.True(status == 0, output + error);
        Assert.DoesNotContain(killed.Path, output, StringComparison.Ordinal);
        (status, _, error) = await TruckeeFsCli.RunAsync(null, "umount", killed.Path);
        Assert.Equal(1, status);
        Assert.Contains("is not mounted", error, StringComparison.Ordinal);

        await using var next = await fs.MountAsync();
        Assert.False(File.Exists(link));
        Assert.True(File.Exists(TruckeeFs.Operations.MountStatus.LinkFor(next.Path)));
    }

    [Fact]
    public async Task Background_mount_returns_once_the_mount_answers()
    {
        await using var fs = new EmbeddedFilesystem();
        var mountpoint = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "..", "mnt")).FullName;
        var pid = 0;
        try
        {
            var (status, output, error) = await TruckeeFsCli.RunAsync(null, ["mount", "-d", mountpoint, .. fs.Flags]);
            Assert.True(status == 0, output + error);
            pid = int.Parse(ReadyLine().Match(error).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.Contains($"truckeefs: mounted at {mountpoint}", error, StringComparison.Ordinal);
            // Mounted and answering the moment the parent is gone.
            Assert.True(TruckeeFsMount.IsMounted(mountpoint));
            await File.WriteAllTextAsync(Path.Combine(mountpoint, "hello"), "world");
            Assert.Equal("world", await File.ReadAllTextAsync(Path.Combine(mountpoint, "hello")));
            Assert.NotEqual(Environment.ProcessId, pid);
            Assert.False(System.Diagnostics.Process.GetProcessById(pid).HasExited);

            (status, output, error) = await TruckeeFsCli.RunAsync(null, "umount", mountpoint);
            Assert.True(status == 0, output + error);
            Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"pid {pid} committed its changes and exited with status 0"), error, StringComparison.Ordinal);
        }
        finally
        {
            if (TruckeeFsMount.IsMounted(mountpoint)) System.Diagnostics.Process.Start("fusermount3", ["-uz", mountpoint])!.WaitForExit();
            if (pid != 0) _ = Sys.Kill(pid, Sys.SIGKILL);
        }
    }

    [Fact]
    public async Task Background_mount_fails_with_the_reason_for_a_bad_mount_point_or_a_failing_self_test()
    {
        await using var fs = new EmbeddedFilesystem();
        var missing = Path.Combine(fs.CacheDir, "no-such-dir");
        var (status, output, error) = await TruckeeFsCli.RunAsync(null, ["mount", "--background", missing, .. fs.Flags]);
        Assert.True(status == 1, output + error);
        Assert.Contains($"mount point {missing} does not exist", error, StringComparison.Ordinal);
        Assert.DoesNotMatch(ReadyLine(), error);

        var mountpoint = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "..", "mnt")).FullName;
        (status, output, error) = await TruckeeFsCli.RunAsync(new Dictionary<string, string> { ["PATH"] = "/nonexistent" }, ["mount", "-d", mountpoint, .. fs.Flags]);
        Assert.True(status == 1, output + error);
        Assert.Contains("self-test compatibility failed", error, StringComparison.Ordinal);
        Assert.False(TruckeeFsMount.IsMounted(mountpoint));
    }

    [GeneratedRegex(@"running in the background as pid (\d+)")]
    private static partial Regex ReadyLine();
}
