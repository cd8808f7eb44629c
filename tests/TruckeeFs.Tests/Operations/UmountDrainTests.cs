using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;
using TruckeeFs.Tests.WriteBack;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// <c>truckeefs umount</c> on a mount whose closes left uploads queued (a slow Tahoe gateway):
/// it returns only once every closed file is stored and committed, nothing left staged.
/// </summary>
public sealed class UmountDrainTests : IAsyncLifetime
{
    private TahoeBackedFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await TahoeBackedFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task Umount_returns_once_the_uploads_queued_by_closes_are_stored()
    {
        using var cache = TempDirectory.Create("umount-drain");
        // Two 64 KiB blocks each, both too big for a literal cap: two uploads per file.
        var files = Enumerable.Range(0, 4).ToDictionary(i => $"f{i}", _ => RandomNumberGenerator.GetBytes(100_000));
        await using (var mount = await TruckeeFsMount.StartAsync(_fs.Options(cache.Path)))
        {
            var uploads = _fs.Gateway.Counters.Uploads;
            _fs.Gateway.Faults.Latency = TimeSpan.FromSeconds(1);
            foreach (var (name, data) in files) await File.WriteAllBytesAsync(Path.Combine(mount.Path, name), data);
            Assert.NotEmpty(TahoeBackedFilesystem.Staged(cache.Path));

            var (status, output, error) = await TruckeeFsCli.RunAsync(null, "umount", mount.Path);

            Assert.True(status == 0, output + error + mount.Output);
            Assert.True(mount.Process.HasExited, "umount returned before the mount's process exited");
            Assert.Empty(TahoeBackedFilesystem.Staged(cache.Path));
            Assert.Equal(2 * files.Count, _fs.Gateway.Counters.Uploads - uploads);
        }
        _fs.Gateway.Faults.Clear();
        await using var fresh = await TruckeeFsMount.StartAsync(_fs.Options());
        foreach (var (name, data) in files) Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(fresh.Path, name)));
        Assert.Equal(0, await fresh.UnmountAsync());
    }
}
