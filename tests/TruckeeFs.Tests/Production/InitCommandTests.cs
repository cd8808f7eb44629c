using System.Text.RegularExpressions;
using System.Globalization;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// <c>truckeefs init</c> through the real executable against MariaDB and a Tahoe gateway, and
/// the documented set-up: init, the rootcap line into the YAML file, mount with <c>-c</c>.
/// </summary>
public sealed class InitCommandTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = TempDirectory.Create("prod-init");
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync(createDatabase: false);

    public async Task DisposeAsync()
    {
        await _fs.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task Init_creates_the_schema_and_a_rootcap_and_the_yaml_it_completes_mounts()
    {
        var yaml = Path.Combine(_directory.Path, "env.yaml");
        var db = _fs.MariaDb;
        await File.WriteAllLinesAsync(yaml,
        [
            string.Create(CultureInfo.InvariantCulture, $"sql_host: {db.Host}:{db.Port}"),
            $"sql_db: {_fs.Database}",
            $"sql_user: {db.User}",
            $"sql_pass: {db.Password}",
            $"redis_host: {_fs.Redis.EndPoint}",
            $"tahoe_url: {_fs.TahoeUrl}",
            "block_size: 64k",
        ]);

        var (status, output, error) = await TruckeeFsCli.RunAsync(null, "init", "-c", yaml);
        Assert.True(status == 0, error);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("rootcap: URI:DIR2:", line, StringComparison.Ordinal);
        var rootCap = line["rootcap: ".Length..].Trim();
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"created the schema and filesystem {_fs.FilesystemId()} in mysql {db.Host}:{db.Port}/{_fs.Database}"), error, StringComparison.Ordinal);
        Assert.Contains("created a writable root directory", error, StringComparison.Ordinal);
        Assert.DoesNotContain(db.Password, output + error, StringComparison.Ordinal);
        Assert.Equal(rootCap, (await _fs.Client.ListAsync(rootCap)).WriteCap);
        Assert.Equal(3, _fs.Count($"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{_fs.Database}' AND table_name IN ('inodes', 'dirents', 'blocks')"));

        // As the README says: append the line to the file; init again changes nothing.
        await File.AppendAllTextAsync(yaml, line + "\n");
        var filesystemId = _fs.FilesystemId();
        (status, output, error) = await TruckeeFsCli.RunAsync(null, "init", "-c", yaml);
        Assert.True(status == 0, error);
        Assert.Equal("", output);
        Assert.Contains($"already holds filesystem {filesystemId}", error, StringComparison.Ordinal);
        Assert.Contains("the rootcap is a writable directory with 0 entries (FLAT)", error, StringComparison.Ordinal);
        Assert.Equal(filesystemId, _fs.FilesystemId());

        // And the file mounts, with contents in the new rootcap's gateway.
        byte[] contents = [.. "written through a mount configured by truckeefs init"u8, .. new byte[100_000]];
        await using (var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["-c", yaml] }))
        {
            Assert.Contains($"contents tahoe {_fs.TahoeUrl}", mount.Output, StringComparison.Ordinal);
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "hello"), contents);
            Assert.Equal(0, await mount.UnmountAsync());
        }
        await using (var again = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["-c", yaml] }))
        {
            Assert.Equal(contents, await File.ReadAllBytesAsync(Path.Combine(again.Path, "hello")));
            Assert.Equal(0, await again.UnmountAsync());
        }
    }

    [Fact]
    public async Task Init_with_MariaDB_unreachable_exits_1_naming_it()
    {
        var address = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{ProductionFilesystem.ClosedPort()}");
        var (status, output, error) = await TruckeeFsCli.RunAsync(null, "init", "--sql-host", address, "--tahoe-url", _fs.TahoeUrl.ToString());
        Assert.Equal(1, status);
        Assert.Equal("", output);
        Assert.Matches($@"truckeefs: metadata database mysql {Regex.Escape(address)}/\S+ is unreachable", error);
    }

    [Fact]
    public async Task Init_refuses_a_read_only_rootcap()
    {
        var readOnly = (await _fs.Client.ListAsync(_fs.RootCap)).ReadCap;
        var (status, _, error) = await TruckeeFsCli.RunAsync(new Dictionary<string, string> { ["TRUCKEEFS_ROOTCAP"] = readOnly }, "init", "--tahoe-url", _fs.TahoeUrl.ToString());
        Assert.Equal(2, status);
        Assert.Contains("rootcap: '********' from environment variable TRUCKEEFS_ROOTCAP is not a writable directory cap", error, StringComparison.Ordinal);
        Assert.DoesNotContain(readOnly, error, StringComparison.Ordinal);
    }
}
