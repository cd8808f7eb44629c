using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.WriteBack;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// A read waiting for a block's download holds up neither other reads nor writes of the same
/// file, through a real mount on the Tahoe test gateway. Descriptors are opened with O_DIRECT so
/// that every read and write reaches the filesystem, none of them waiting on the kernel's page
/// cache.
/// </summary>
public sealed class ParallelReadTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private TahoeBackedFilesystem _fs = null!;

    public async Task InitializeAsync() => _fs = await TahoeBackedFilesystem.CreateAsync();

    public async Task DisposeAsync() => await _fs.DisposeAsync();

    [Fact]
    public async Task A_read_waiting_for_a_download_lets_reads_of_cached_blocks_and_writes_of_the_same_file_go_on()
    {
        var data = RandomNumberGenerator.GetBytes(8 * Block);
        await using (var writer = await TruckeeFsMount.StartAsync(_fs.Options()))
        {
            await File.WriteAllBytesAsync($"{writer.Path}/f", data);
            TahoeBackedFilesystem.Fsync($"{writer.Path}/f");
            Assert.Equal(0, await writer.UnmountAsync());
        }
        // A new cache: every block comes from the gateway, which will take longer than usual.
        await using var mount = await TruckeeFsMount.StartAsync(_fs.Options(netTimeout: "60"));
        var path = $"{mount.Path}/f";
        Assert.Equal(0, Sys.Open(path, Sys.O_RDWR | Sys.O_DIRECT, out var fd));
        try
        {
            var cached = new byte[Block];
            Assert.Equal(0, Sys.PReadFully(fd, cached, 5 * Block, out _));

            // Every request now takes 10 s: the download of block 0 keeps its read waiting.
            _fs.Gateway.Faults.Latency = TimeSpan.FromSeconds(10);
            var slow = Task.Run(() =>
            {
                var head = new byte[Block];
                Assert.Equal(0, Sys.PReadFully(fd, head, 0, out _));
                return head;
            });
            await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Gateway.Counters.InFlight > 0, "the download of block 0 reaches the gateway");

            Assert.Equal(0, Sys.PReadFully(fd, cached, 5 * Block, out _));
            Assert.Equal(data[(5 * Block)..(6 * Block)], cached);
            Assert.False(slow.IsCompleted, "the read of a cached block waited for the download of another");
            var rewritten = RandomNumberGenerator.GetBytes(Block);
            Assert.Equal(0, Sys.PWrite(fd, rewritten, 6 * Block, out _));
            Assert.False(slow.IsCompleted, "the write waited for the download");
            rewritten.CopyTo(data, 6 * Block);

            Assert.Equal(data[..Block], await slow);
        }
        finally
        {
            Sys.Close(fd);
        }
        _fs.Gateway.Faults.Clear();
        Assert.Equal(data, await File.ReadAllBytesAsync(path));
        Assert.Equal(0, await mount.UnmountAsync());
    }
}
