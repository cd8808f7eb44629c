using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.WriteBack;

/// <summary>
/// The engine's write-back counters (staged bytes, upload queue, bytes uploaded, failures),
/// driven through the engine itself, which is where they live, against the Tahoe test gateway.
/// </summary>
public sealed class WriteBackStatisticsTests : IAsyncLifetime
{
    private const int Block = 64 << 10;
    private readonly TempDirectory _directory = TempDirectory.Create("wb-stats");
    private TahoeTestGateway _gateway = null!;
    private TahoeContentStore _store = null!;
    private SqlMetaStore _meta = null!;
    private InProcessCoordinator _coordinator = null!;
    private Vfs.Vfs _vfs = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TahoeTestGateway.StartAsync();
        _store = new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(0.5) });
        _meta = new SqlMetaStore(new SqliteDialect(Path.Combine(_directory.Path, "metadata.db")), 1, 0, 0);
        _coordinator = new InProcessCoordinator();
        _vfs = new Vfs.Vfs(_meta, _store, _coordinator, NullTreeMirror.Instance,
            new VfsOptions { BlockSize = Block, CacheDirectory = Path.Combine(_directory.Path, "cache") }, NullLogger.Instance);
        await _vfs.RecoverAsync();
    }

    public async Task DisposeAsync()
    {
        _gateway.Faults.Clear();
        await _vfs.DisposeAsync();
        await _coordinator.DisposeAsync();
        await _store.DisposeAsync();
        _meta.Dispose();
        await _gateway.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task Staged_bytes_queue_length_uploads_and_failures_follow_a_file_through_write_back()
    {
        var data = RandomNumberGenerator.GetBytes(2 * Block + 1000);
        Assert.Equal(0, _vfs.Create(new RequestContext(0, 0, 1), Vfs.Vfs.RootInode, "f"u8, 0x1A4, 0, out _, out var handle));
        // Failing before the write: the blocks it fills start uploading at once.
        _gateway.Faults.FailureFraction = 1;
        Assert.Equal(0, await _vfs.WriteAsync(handle, 0, data));
        Assert.Equal(data.Length, _vfs.Statistics.Snapshot().StagedBytes);
        Assert.Equal(0, _vfs.Statistics.Snapshot().UploadQueue);

        Assert.Equal(0, await _vfs.FlushAsync(handle));
        Assert.Equal(1, _vfs.Statistics.Snapshot().UploadQueue);
        await WaitUntilAsync(() => _vfs.Statistics.Snapshot().UploadFailures >= 2, "two attempts failed");
        Assert.Equal(data.Length, _vfs.Statistics.Snapshot().StagedBytes);
        Assert.Equal(0, _vfs.Statistics.Snapshot().BytesUploaded);

        _gateway.Faults.Clear();
        Assert.Equal(0, await _vfs.FsyncAsync(handle));
        Assert.Equal(data.Length, _vfs.Statistics.Snapshot().BytesUploaded);
        await _vfs.ReleaseAsync(handle);
        await WaitUntilAsync(() => _vfs.Statistics.Snapshot().UploadQueue == 0, "the queue lets go of the file");
        Assert.Equal(0, _vfs.Statistics.Snapshot().StagedBytes);

        // A one-byte change stages a copy of one block; the commit releases it.
        var (status, again, _) = await _vfs.OpenAsync(_meta.Lookup(Vfs.Vfs.RootInode, "f"u8.ToArray())!.Id, 0);
        Assert.Equal(0, status);
        Assert.Equal(0, await _vfs.WriteAsync(again, Block + 5, new byte[] { 1 }));
        Assert.Equal(Block, _vfs.Statistics.Snapshot().StagedBytes);
        Assert.Equal(0, await _vfs.FsyncAsync(again));
        await _vfs.ReleaseAsync(again);
        await WaitUntilAsync(() => _vfs.Statistics.Snapshot().UploadQueue == 0, "the queue lets go of the file");
        Assert.Equal(0, _vfs.Statistics.Snapshot().StagedBytes);
        Assert.Equal(data.Length + Block, _vfs.Statistics.Snapshot().BytesUploaded);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }
}
