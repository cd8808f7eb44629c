using System.Globalization;
using System.Security.Cryptography;
using MySql.Data.MySqlClient;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// fsck and gc on the production backends (MariaDB metadata, Tahoe contents): the MySQL dialect
/// of every check and repair query, and a block pointing at a cap the grid does not hold.
/// </summary>
public sealed class ProductionFsckTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task Damage_made_in_MariaDB_is_found_and_repaired_and_gc_says_Tahoe_cannot_be_listed()
    {
        var kept = RandomNumberGenerator.GetBytes(Block + 100);
        var broken = RandomNumberGenerator.GetBytes(2 * Block);
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "kept"), kept);
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "broken"), broken);
            Directory.CreateDirectory(Path.Combine(mount.Path, "dir"));
            Assert.Equal(0, await mount.UnmountAsync());
        }
        var (status, output, error) = await RunAsync("fsck");
        Assert.True(status == 0, output + error);
        Assert.Contains("clean: no problems found", output, StringComparison.Ordinal);

        var keptInode = _fs.Count("SELECT inode FROM dirents WHERE parent = 1 AND name = 'kept'");
        var brokenInode = _fs.Count("SELECT inode FROM dirents WHERE parent = 1 AND name = 'broken'");
        var directory = _fs.Count("SELECT inode FROM dirents WHERE parent = 1 AND name = 'dir'");
        var unknownCap = $"URI:CHK:{TahoeCaps.EncodeBase32(RandomNumberGenerator.GetBytes(16))}:{TahoeCaps.EncodeBase32(RandomNumberGenerator.GetBytes(32))}:1:3:{Block}";
        Execute("DELETE FROM dirents WHERE inode = @inode", ("@inode", keptInode));
        Execute("UPDATE inodes SET nlink = 7 WHERE id = @inode", ("@inode", directory));
        Execute("UPDATE blocks SET cap = @cap WHERE inode = @inode AND idx = 0", ("@cap", unknownCap), ("@inode", brokenInode));

        (status, output, error) = await RunAsync("fsck", "--json");
        Assert.True(status == 4, output + error);
        var kinds = EmbeddedFilesystem.Json(output).GetProperty("findings").EnumerateArray()
            .Select(f => $"{f.GetProperty("kind").GetString()} {f.GetProperty("subject").GetString()}").ToList();
        Assert.Contains($"lost_inode inode {keptInode}", kinds);
        Assert.Contains("wrong_nlink /dir", kinds);
        Assert.Contains($"unrecorded_cap {unknownCap}", kinds);
        Assert.Contains($"missing_content {unknownCap}", kinds);
        Assert.Single(kinds, k => k.StartsWith("wrong_refcount URI:CHK:", StringComparison.Ordinal));

        // A host whose heartbeat is fresh may still have it mounted: no repair then.
        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        Execute("INSERT INTO sessions (host, pid, mountpoint, started, heartbeat) VALUES ('otherhost', 77, @mountpoint, @now, @now)",
            ("@mountpoint", "/mnt/other"u8.ToArray()), ("@now", now));
        (status, output, error) = await RunAsync("fsck", "--repair");
        Assert.True(status == 8, output + error);
        Assert.Contains("otherhost (pid 77 at /mnt/other) mounted this filesystem less than 5 minutes ago", error, StringComparison.Ordinal);
        Execute("UPDATE sessions SET heartbeat = @then WHERE host = 'otherhost'", ("@then", now - 600_000_000_000L));

        (status, output, error) = await RunAsync("fsck", "--repair");
        Assert.True(status == 1, output + error);
        (status, output, error) = await RunAsync("fsck");
        Assert.True(status == 0, output + error);

        (status, output, error) = await RunAsync("gc", "--json", "--min-age", "0");
        Assert.True(status == 0, output + error);
        Assert.Contains("cannot list its objects", EmbeddedFilesystem.Json(output).GetProperty("store_note").GetString(), StringComparison.Ordinal);

        await using var again = await TruckeeFsMount.StartAsync(_fs.Options());
        Assert.Equal(kept, await File.ReadAllBytesAsync(Path.Combine(again.Path, "lost+found", string.Create(CultureInfo.InvariantCulture, $"#{keptInode}"))));
        var expected = broken.ToArray();
        Array.Clear(expected, 0, Block);
        Assert.Equal(expected, await File.ReadAllBytesAsync(Path.Combine(again.Path, "broken")));
        Assert.Equal(0, await again.UnmountAsync());
    }

    private Task<(int Status, string Output, string Error)> RunAsync(params string[] arguments) =>
        TruckeeFsCli.RunAsync(_fs.Secrets().ToDictionary(p => p.Key, p => p.Value!), [.. arguments, .. _fs.Arguments()]);

    private void Execute(string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = new MySqlConnection(_fs.ConnectionString);
        connection.Open();
        using var command = new MySqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        Assert.Equal(1, command.ExecuteNonQuery());
    }
}
