using System.Globalization;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// The self-tests through the real executable: <c>truckeefs selftest</c> on demand, and the
/// start-up tests of <c>truckeefs mount</c>, which refuses to mount when one fails.
/// </summary>
public sealed class SelftestTests
{
    [Fact]
    public async Task Selftest_passes_on_the_embedded_default_with_a_line_per_test_and_json()
    {
        await using var fs = new EmbeddedFilesystem();
        var (status, output, error) = await fs.RunAsync("selftest");
        Assert.True(status == 0, output + error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("PASS compatibility: Linux", lines[0], StringComparison.Ordinal);
        Assert.Contains("libfuse 3.", lines[0], StringComparison.Ordinal);
        Assert.StartsWith($"PASS integration: metadata: sqlite {fs.DataDir}/metadata.db", lines[1], StringComparison.Ordinal);
        Assert.StartsWith($"PASS integration: contents: local {fs.ContentsDir}", lines[2], StringComparison.Ordinal);
        Assert.StartsWith("PASS integration: coordination: in-process", lines[3], StringComparison.Ordinal);
        // The probes leave nothing behind.
        Assert.Equal(0, fs.Sql("SELECT COUNT(*) FROM contents"));
        Assert.Empty(Directory.EnumerateFiles(fs.ContentsDir, "*", SearchOption.AllDirectories));

        (status, output, error) = await fs.RunAsync("selftest", "--json");
        Assert.True(status == 0, output + error);
        var json = EmbeddedFilesystem.Json(output);
        Assert.True(json.GetProperty("passed").GetBoolean());
        Assert.Equal(["compatibility", "integration: metadata", "integration: contents", "integration: coordination"],
            json.GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString()!));
        Assert.All(json.GetProperty("tests").EnumerateArray(), t => Assert.True(t.GetProperty("passed").GetBoolean()));
    }

    [Fact]
    public async Task Selftest_names_a_server_that_is_down()
    {
        await using var fs = new EmbeddedFilesystem();
        var port = ProductionFilesystem.ClosedPort();
        var (status, output, error) = await fs.RunAsync("selftest", "--redis-host", string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}"), "--net-timeout", "2");
        Assert.True(status == 1, output + error);
        Assert.Contains("PASS compatibility", output, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"FAIL integration: coordination: Redis 127.0.0.1:{port} is unreachable"), output, StringComparison.Ordinal);

        (status, output, error) = await fs.RunAsync("selftest", "--json", "--tahoe-url", string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/"),
            "--rootcap", "URI:DIR2:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "--net-timeout", "1");
        Assert.True(status == 1, output + error);
        var json = EmbeddedFilesystem.Json(output);
        Assert.False(json.GetProperty("passed").GetBoolean());
        var contents = json.GetProperty("tests").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "integration: contents");
        Assert.False(contents.GetProperty("passed").GetBoolean());
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}"), contents.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("bbbbbbbb", output + error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Selftest_runs_the_functionality_test_in_a_mount_that_holds_data_and_leaves_it_as_it_was()
    {
        await using var fs = new EmbeddedFilesystem();
        await using var mount = await fs.MountAsync();
        await File.WriteAllTextAsync(Path.Combine(mount.Path, "precious"), "keep me");
        Directory.CreateDirectory(Path.Combine(mount.Path, "sub"));

        // The mount holds the embedded database: the functionality test alone, with the integration probes of another data dir.
        var (status, output, error) = await TruckeeFsCli.RunAsync(null, "selftest", mount.Path, "--json");
        Assert.True(status == 0, output + error);
        var functionality = EmbeddedFilesystem.Json(output).GetProperty("tests").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "functionality");
        Assert.True(functionality.GetProperty("passed").GetBoolean(), functionality.GetProperty("detail").GetString());
        Assert.Equal(["precious", "sub"], Directory.EnumerateFileSystemEntries(mount.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("keep me", await File.ReadAllTextAsync(Path.Combine(mount.Path, "precious")));

        (status, output, _) = await TruckeeFsCli.RunAsync(null, "selftest", fs.CacheDir);
        Assert.Equal(1, status);
        Assert.Contains($"FAIL functionality: {fs.CacheDir} is not a mount point", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mount_runs_the_functionality_test_when_asked_and_reports_the_kernel_protocol()
    {
        await using var fs = new EmbeddedFilesystem();
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions
        {
            DataDir = fs.DataDir,
            CacheDir = fs.CacheDir,
            ExtraArgs = ["--test-functionality", "true"],
            Verbose = true,
        });
        await WaitForAsync(() => mount.Output.Contains("truckeefs: mounted at", StringComparison.Ordinal), mount);
        // Passes are logged at -v; only failures reach standard error without it.
        Assert.Contains("self-test compatibility passed", mount.Output, StringComparison.Ordinal);
        Assert.Contains("self-test integration: metadata passed", mount.Output, StringComparison.Ordinal);
        Assert.Contains("self-test integration: contents passed", mount.Output, StringComparison.Ordinal);
        Assert.Contains("self-test integration: coordination passed", mount.Output, StringComparison.Ordinal);
        Assert.Contains("self-test functionality passed", mount.Output, StringComparison.Ordinal);
        Assert.Matches(@"kernel FUSE protocol 7\.\d+", mount.Output);
        Assert.Empty(Directory.EnumerateFileSystemEntries(mount.Path));
    }

    [Fact]
    public async Task Mount_refuses_when_the_compatibility_test_fails_and_the_key_turns_it_off()
    {
        await using var fs = new EmbeddedFilesystem();
        var mountpoint = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "..", "mnt")).FullName;
        // No fusermount3 on this PATH; as root libfuse mounts without it.
        var environment = new Dictionary<string, string> { ["PATH"] = "/nonexistent" };
        var (status, output, error) = await TruckeeFsCli.RunAsync(environment, ["mount", mountpoint, .. fs.Flags]);
        Assert.True(status == 1, output + error);
        Assert.Contains("self-test compatibility failed, so the filesystem is not mounted: fusermount3 is not on the PATH", error, StringComparison.Ordinal);
        Assert.Contains("test_compatibility", error, StringComparison.Ordinal);
        Assert.False(TruckeeFsMount.IsMounted(mountpoint));

        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions
        {
            MountPoint = mountpoint,
            DataDir = fs.DataDir,
            CacheDir = fs.CacheDir,
            ExtraArgs = ["--test-compatibility", "false"],
            Environment = new Dictionary<string, string?> { ["PATH"] = "/nonexistent" },
        });
        Assert.DoesNotContain("self-test compatibility", mount.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mount_refuses_when_the_database_cannot_write_and_the_key_turns_the_test_off()
    {
        await using var fs = new EmbeddedFilesystem();
        Assert.Equal(0, (await fs.RunAsync("init")).Status);
        // A database that answers but refuses new content records, as a full or read-only one would.
        fs.Sql("CREATE TRIGGER refuse BEFORE INSERT ON contents BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
        var mountpoint = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "..", "mnt")).FullName;

        var (status, output, error) = await TruckeeFsCli.RunAsync(null, ["mount", mountpoint, .. fs.Flags]);
        Assert.True(status == 1, output + error);
        Assert.Contains("self-test integration: metadata failed, so the filesystem is not mounted", error, StringComparison.Ordinal);
        Assert.Contains("disk says no", error, StringComparison.Ordinal);
        Assert.False(TruckeeFsMount.IsMounted(mountpoint));

        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions
        {
            MountPoint = mountpoint,
            DataDir = fs.DataDir,
            CacheDir = fs.CacheDir,
            ExtraArgs = ["--test-integration", "false"],
        });
        Assert.True(Directory.Exists(mountpoint));
    }

    [Fact]
    public async Task A_failing_functionality_test_takes_the_mount_down_again_and_a_background_start_reports_it()
    {
        await using var fs = new EmbeddedFilesystem();
        var mountpoint = Directory.CreateDirectory(Path.Combine(fs.CacheDir, "..", "mnt")).FullName;
        // A read-only mount answers, but nothing can be created in it.
        string[] readOnly = ["--test-functionality", "true", "--mount-options", "fsname=TruckeeFS,default_permissions,ro"];
        foreach (var background in new[] { false, true })
        {
            var (status, output, error) = await TruckeeFsCli.RunAsync(null, ["mount", .. (background ? ["-d"] : Array.Empty<string>()), mountpoint, .. readOnly, .. fs.Flags]);
            Assert.True(status == 1, output + error);
            Assert.Contains("self-test functionality failed, so the filesystem is not mounted", error, StringComparison.Ordinal);
            Assert.Contains("cannot create the scratch directory: Read-only file system", error, StringComparison.Ordinal);
            Assert.DoesNotContain("running in the background", error, StringComparison.Ordinal);
            Assert.False(TruckeeFsMount.IsMounted(mountpoint));
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, TruckeeFsMount mount)
    {
        for (var i = 0; i < 300 && !condition(); i++) await Task.Delay(100);
        Assert.True(condition(), mount.Output);
    }
}
