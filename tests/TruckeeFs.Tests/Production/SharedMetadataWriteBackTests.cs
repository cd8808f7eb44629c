using System.Globalization;
using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.WriteBack;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// MariaDB metadata with the local content store: a close leaves the commit of its version to
/// the upload queue, as on Tahoe (the database's latency is what it hides here). A trigger on
/// the block table makes every commit fail while the files are written, so the versions stay
/// sealed and journaled until the process is killed; the next mount commits them.
/// </summary>
public sealed class SharedMetadataWriteBackTests : IAsyncLifetime
{
    private ProductionFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await ProductionFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task Files_closed_while_their_commits_fail_are_complete_after_a_kill_and_the_next_mount()
    {
        using var data = TempDirectory.Create("shared-wb-data");
        using var cache = TempDirectory.Create("shared-wb-cache");
        var expected = new Dictionary<string, byte[]>();
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.LocalStoreOptions(data.Path, cache.Path)))
        {
            await File.WriteAllBytesAsync(Path.Combine(mount.Path, "before"), [1]);
            TahoeBackedFilesystem.Fsync(Path.Combine(mount.Path, "before"));
            _fs.Execute("CREATE TRIGGER hold_commits BEFORE INSERT ON blocks FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'commits held by the test'");
            for (var i = 0; i < 20; i++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"f{i}");
                expected[name] = RandomNumberGenerator.GetBytes(2 + (i * 4099));
                // close(2) returns although the commit cannot land: it is the queue's to retry.
                await File.WriteAllBytesAsync(Path.Combine(mount.Path, name), expected[name]);
            }
            foreach (var (name, bytes) in expected) Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(mount.Path, name)));
            Assert.Equal(expected.Count, TahoeBackedFilesystem.Staged(cache.Path).Count(path => path.EndsWith(".commit", StringComparison.Ordinal)));
            Assert.Equal(0, _fs.Count("SELECT COUNT(*) FROM inodes WHERE size > 1"));
            mount.Kill();
        }
        _fs.Execute("DROP TRIGGER hold_commits");

        await using (var again = await TruckeeFsMount.StartAsync(_fs.LocalStoreOptions(data.Path, cache.Path)))
        {
            foreach (var (name, bytes) in expected) Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(again.Path, name)));
            Assert.Equal(0, await again.UnmountAsync());
        }
        Assert.Empty(TahoeBackedFilesystem.Staged(cache.Path));
        Assert.Equal(expected.Count, _fs.Count("SELECT COUNT(*) FROM inodes WHERE size > 1"));
    }
}
