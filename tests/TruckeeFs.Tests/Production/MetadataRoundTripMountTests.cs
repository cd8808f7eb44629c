using System.Globalization;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// What the system calls of a small-file workload cost in round trips to MariaDB, on a mount
/// set up as bench/production.sh sets it up (MariaDB metadata, Redis, the local content store),
/// with a relay in front of the database that counts them. Heartbeats are put off, so that only
/// the calls measured talk to the database.
/// </summary>
public sealed class MetadataRoundTripMountTests : IAsyncLifetime
{
    private ProductionFilesystem _fs = null!;
    private RoundTripCounter _relay = null!;

    public async Task InitializeAsync()
    {
        _fs = await ProductionFilesystem.CreateAsync();
        _relay = new RoundTripCounter(_fs.MariaDb.Host, _fs.MariaDb.Port);
    }

    public async Task DisposeAsync()
    {
        _relay.Dispose();
        await _fs.DisposeAsync();
    }

    [Fact]
    public async Task A_stat_of_files_just_closed_and_of_their_directory_costs_no_query()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var dir = Path.Combine(mount.Path, "d");
        Assert.Equal(0, Sys.Mkdir(dir, 0x1ED));
        var names = Enumerable.Range(0, 20).Select(i => Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"f{i}"))).ToList();
        foreach (var name in names)
        {
            Assert.Equal(0, Sys.Open(name, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x1A4, out var fd));
            Assert.Equal(0, Sys.Write(fd, [1, 2, 3], out _));
            // The commit a close would run after close(2) returned (the kernel sends the release
            // on its own), before fsync(2) returns.
            Assert.Equal(0, Sys.Fsync(fd));
            Assert.Equal(0, Sys.Close(fd));
        }

        _relay.Reset();
        Assert.Equal(0, Sys.Stat(dir, out var directory));
        foreach (var name in names)
        {
            Assert.Equal(0, Sys.Stat(name, out var file));
            Assert.Equal(3, file.Size);
        }

        Assert.Equal(0, _relay.RoundTrips);
        Assert.Equal(2UL, directory.Nlink);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    private TruckeeFsMountOptions Options() => new()
    {
        ExtraArgs =
        [
            "--sql-host", string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{_relay.Port}"), "--sql-db", _fs.Database, "--sql-user", _fs.MariaDb.User,
            "--redis-host", _fs.Redis.EndPoint, "--session-heartbeat", "3600", "--session-timeout", "7200",
        ],
        Environment = new Dictionary<string, string?> { ["TRUCKEEFS_SQL_PASS"] = _fs.MariaDb.Password },
    };
}
