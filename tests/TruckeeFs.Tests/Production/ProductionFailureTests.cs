using System.Text.RegularExpressions;
using System.Globalization;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using Xunit.Abstractions;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// Production backends failing: a server unreachable at mount is named with its address and
/// nothing is mounted; a Tahoe gateway failing during writes loses no byte once it recovers.
/// </summary>
public sealed class ProductionFailureTests(ITestOutputHelper output) : IAsyncLifetime
{
    private ProductionFilesystem _fs = null!;
    private TempDirectory _mountPoint = null!;

    public async Task InitializeAsync()
    {
        _fs = await ProductionFilesystem.CreateAsync(faults: true);
        _mountPoint = TempDirectory.Create("prod-unreachable-mnt");
    }

    public async Task DisposeAsync()
    {
        _mountPoint.Dispose();
        await _fs.DisposeAsync();
    }

    [Fact]
    public async Task MariaDB_unreachable_at_mount_is_named_with_its_address_and_nothing_is_mounted()
    {
        var address = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{ProductionFilesystem.ClosedPort()}");
        var (status, error) = await MountExpectingFailure(_fs.Arguments(sqlHost: address));
        Assert.Equal(1, status);
        Assert.Matches($@"truckeefs: metadata database mysql {Regex.Escape(address)}/\S+ is unreachable", error);
    }

    [Fact]
    public async Task Redis_unreachable_at_mount_is_named_with_its_address_and_nothing_is_mounted()
    {
        var address = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{ProductionFilesystem.ClosedPort()}");
        var (status, error) = await MountExpectingFailure(_fs.Arguments(redisHost: address, netTimeout: "2"));
        Assert.Equal(1, status);
        Assert.Contains($"truckeefs: Redis {address} is unreachable", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tahoe_gateway_unreachable_at_mount_is_named_and_nothing_is_mounted()
    {
        var url = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{ProductionFilesystem.ClosedPort()}/"));
        var (status, error) = await MountExpectingFailure(_fs.Arguments(tahoeUrl: url, netTimeout: "1"));
        Assert.Equal(1, status);
        Assert.Contains($"truckeefs: Tahoe gateway {url} failed", error, StringComparison.Ordinal);
        Assert.Contains("Connection refused", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_a_gateway_outage_during_writes_every_byte_is_there()
    {
        var gateway = _fs.Gateway!;
        using var data = TempDirectory.Create("prod-outage-data");
        using var cache = TempDirectory.Create("prod-outage-cache");
        var written = new WrittenFiles();
        var closeErrors = 0;
        // A short network timeout: the client's retries give up within the outage, so some
        // closes fail and their data must wait, staged, for a later commit.
        var options = _fs.Options(data.Path, cache.Path, netTimeout: "1");
        await using (var mount = await TruckeeFsMount.StartAsync(options))
        {
            for (var i = 0; i < 4; i++) closeErrors += Closed(written.Write(mount.Path, $"before-{i}", 100_000 + i));

            gateway.Faults.FailureFraction = 1;
            var outage = Task.Delay(TimeSpan.FromSeconds(5)).ContinueWith(_ => gateway.Faults.Clear(), TaskScheduler.Default);
            for (var i = 0; !outage.IsCompleted; i++)
            {
                Directory.CreateDirectory(Path.Combine(mount.Path, $"during-{i}"));
                closeErrors += Closed(written.Write(mount.Path, $"during-{i}/file", 64 * 1024 * 2 + i * 1000));
            }
            await outage;
            for (var i = 0; i < 4; i++) closeErrors += Closed(written.Write(mount.Path, $"after-{i}", 200_000 + i));
            Assert.True(gateway.Counters.FailuresInjected > 0, "the outage was felt");
            Assert.Equal(0, await mount.UnmountAsync());
        }
        Assert.True(written.Count > 8, $"only {written.Count} files were written");

        // The same cache directory: what a failed close left staged is committed at this mount.
        await using (var again = await TruckeeFsMount.StartAsync(options))
        {
            written.Verify(again.Path);
            Assert.Equal(0, await again.UnmountAsync());
        }

        // A fresh cache directory: every byte is now in Tahoe and MariaDB.
        await using (var fresh = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            written.Verify(fresh.Path);
            Assert.Equal(0, await fresh.UnmountAsync());
        }
        // Not a condition of the test (timing decides), but a sign it exercised the staged path.
        output.WriteLine($"{written.Count} files written, {closeErrors} closes reported EIO");
    }

    private async Task<(int Status, string Error)> MountExpectingFailure(List<string> arguments)
    {
        var environment = _fs.Secrets().ToDictionary(p => p.Key, p => p.Value!);
        var (status, _, error) = await TruckeeFsCli.RunAsync(environment, ["mount", _mountPoint.Path, .. arguments]);
        Assert.Null(MountTable.FileSystemTypeAt(_mountPoint.Path));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_mountPoint.Path));
        // One clear line, and no secret in it.
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain(_fs.RootCap, error, StringComparison.Ordinal);
        Assert.DoesNotContain(_fs.MariaDb.Password, error, StringComparison.Ordinal);
        return (status, error);
    }

    /// <summary>1 when close(2) reported an error, for counting them.</summary>
    private static int Closed(int status) => status == 0 ? 0 : 1;
}
