using System.Globalization;
using MySql.Data.MySqlClient;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// <c>truckeefs status</c> through the real executable against a mount on MariaDB, Redis and a
/// Tahoe gateway: the servers with their addresses, the hosts of the sessions table with the age
/// of their heartbeats, and this host's mount with its counters, as text and as JSON.
/// </summary>
public sealed class StatusTests : IAsyncLifetime
{
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task Status_shows_servers_sessions_and_the_mount_with_its_counters()
    {
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options());
        await File.WriteAllTextAsync(Path.Combine(mount.Path, "file"), "counted");
        // Another host's mount, as its heartbeat writer records it, last heard of 5 s ago.
        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        using (var connection = new MySqlConnection(_fs.ConnectionString))
        {
            connection.Open();
            using var insert = new MySqlCommand("INSERT INTO sessions (host, pid, mountpoint, started, heartbeat) VALUES ('otherhost', 4242, @mountpoint, @started, @heartbeat)", connection);
            insert.Parameters.AddWithValue("@mountpoint", "/mnt/elsewhere"u8.ToArray());
            insert.Parameters.AddWithValue("@started", now - 3_600_000_000_000L);
            insert.Parameters.AddWithValue("@heartbeat", now - 5_000_000_000L);
            insert.ExecuteNonQuery();
        }
        // The status file is written when the mount answers, then every 2 s.
        for (var i = 0; i < 100 && !(await RunAsync("status")).Output.Contains(mount.Path, StringComparison.Ordinal); i++) await Task.Delay(100);

        var (status, output, error) = await RunAsync("status", "--json");
        Assert.True(status == 0, output + error);
        var json = EmbeddedFilesystem.Json(output);
        Assert.True(json.GetProperty("healthy").GetBoolean());
        Assert.Equal(_fs.FilesystemId(), json.GetProperty("filesystem_id").GetString());
        var servers = json.GetProperty("servers").EnumerateArray().ToDictionary(s => s.GetProperty("part").GetString()!, s => s);
        Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"mysql {_fs.MariaDb.Host}:{_fs.MariaDb.Port}/{_fs.Database}"),
            servers["metadata"].GetProperty("address").GetString());
        Assert.Contains(_fs.Redis.EndPoint, servers["coordination"].GetProperty("address").GetString(), StringComparison.Ordinal);
        Assert.Equal($"tahoe {_fs.TahoeUrl}", servers["contents"].GetProperty("address").GetString());
        Assert.All(servers.Values, s => Assert.True(s.GetProperty("reachable").GetBoolean()));

        var session = json.GetProperty("sessions").EnumerateArray().Single(s => s.GetProperty("host").GetString() == "otherhost");
        Assert.Equal(4242, session.GetProperty("pid").GetInt64());
        Assert.Equal("/mnt/elsewhere", session.GetProperty("mountpoint").GetString());
        Assert.InRange(session.GetProperty("heartbeat_age_seconds").GetDouble(), 4.5, 120);

        var mine = json.GetProperty("mounts").EnumerateArray().Single(m => m.GetProperty("mountpoint").GetString() == mount.Path);
        Assert.Equal(mount.Process.Id, mine.GetProperty("pid").GetInt32());
        Assert.Equal("mounted", mine.GetProperty("state").GetString());
        Assert.Matches(@"^7\.\d+$", mine.GetProperty("kernel_protocol").GetString());
        Assert.Equal(mount.CacheDir, mine.GetProperty("cache_directory").GetString());
        var statistics = mine.GetProperty("statistics");
        foreach (var counter in new[] { "cache_hits", "cache_misses", "bytes_downloaded", "bytes_uploaded", "upload_failures", "cached_bytes", "staged_bytes", "upload_queue" })
            Assert.True(statistics.GetProperty(counter).GetInt64() >= 0, counter);
        Assert.InRange(statistics.GetProperty("hit_ratio").GetDouble(), 0, 1);

        (status, output, error) = await RunAsync("status");
        Assert.True(status == 0, output + error);
        Assert.Contains("otherhost pid 4242 at /mnt/elsewhere", output, StringComparison.Ordinal);
        Assert.Matches($@"{Regex(mount.Path)} pid {mount.Process.Id} mounted, kernel FUSE protocol 7\.\d+; cache .*, hit ratio", output);
        Assert.DoesNotContain(_fs.MariaDb.Password, output + error, StringComparison.Ordinal);
        Assert.DoesNotContain(_fs.RootCap, output + error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_names_a_server_that_is_down_and_exits_1()
    {
        var port = ProductionFilesystem.ClosedPort();
        var (status, output, error) = await TruckeeFsCli.RunAsync(Secrets(),
            ["status", .. _fs.Arguments(redisHost: string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}"), netTimeout: "2")]);
        Assert.True(status == 1, output + error);
        Assert.Matches(string.Create(CultureInfo.InvariantCulture, $@"coordination +DOWN redis 127\.0\.0\.1:{port}/0: .*unreachable"), output);
        Assert.Matches(@"metadata +ok +mysql", output);
    }

    private Task<(int Status, string Output, string Error)> RunAsync(params string[] arguments) =>
        TruckeeFsCli.RunAsync(Secrets(), [.. arguments, .. _fs.Arguments()]);

    private Dictionary<string, string> Secrets() => _fs.Secrets().ToDictionary(p => p.Key, p => p.Value!);

    private static string Regex(string text) => System.Text.RegularExpressions.Regex.Escape(text);
}
