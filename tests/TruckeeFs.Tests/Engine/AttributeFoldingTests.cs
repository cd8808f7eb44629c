using Microsoft.Extensions.Logging.Abstractions;
using TruckeeFs.Content;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.Engine;

/// <summary>
/// Attribute changes made while a file has writes not committed (what tar, cp -a and rsync do
/// before close) join the file's next version: one metadata transaction for the lot, on the
/// embedded stores the mount uses.
/// </summary>
public sealed class AttributeFoldingTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = TempDirectory.Create("attr-fold");
    private SqlMetaStore _meta = null!;
    private LocalContentStore _store = null!;
    private InProcessCoordinator _coordinator = null!;
    private Vfs.Vfs _vfs = null!;

    public async Task InitializeAsync()
    {
        _meta = new SqlMetaStore(new SqliteDialect(Path.Combine(_directory.Path, "metadata.db")), 1, 0, 0);
        _store = new LocalContentStore(Path.Combine(_directory.Path, "contents"));
        _coordinator = new InProcessCoordinator();
        _vfs = new Vfs.Vfs(_meta, _store, _coordinator, NullTreeMirror.Instance,
            new VfsOptions { BlockSize = 64 << 10, CacheDirectory = Path.Combine(_directory.Path, "cache"), AttributeTimeout = 60, EntryTimeout = 60 },
            NullLogger.Instance);
        await _vfs.RecoverAsync();
    }

    public async Task DisposeAsync()
    {
        await _vfs.DisposeAsync();
        await _coordinator.DisposeAsync();
        await _store.DisposeAsync();
        _meta.Dispose();
        _directory.Dispose();
    }

    [Fact]
    public async Task Times_owner_and_mode_set_before_close_are_committed_with_the_contents_in_one_transaction()
    {
        var writes = _vfs.Statistics.Snapshot().MetadataWrites;
        Assert.Equal(0, _vfs.Create(new RequestContext(0, 0, 1), Vfs.Vfs.RootInode, "extracted"u8, 0x180, 0, out var created, out var handle));
        Assert.Equal(0, await _vfs.WriteAsync(handle, 0, new byte[5000]));
        const long Mtime = 1_500_000_000_000_000_000;
        Assert.Equal(0, (await _vfs.SetAttributesAsync(created.Id, new AttributeChange { Atime = 7, Mtime = Mtime }, null)).Status);
        Assert.Equal(0, (await _vfs.SetAttributesAsync(created.Id, new AttributeChange { Uid = 1000, Gid = 1001 }, null)).Status);
        var (status, seen) = await _vfs.SetAttributesAsync(created.Id, new AttributeChange { Mode = 0x1A4 }, null);
        Assert.Equal(0, status);
        // What the kernel is told at once, before anything is committed.
        Assert.Equal((FileModes.Regular | 0x1A4, 1000L, 1001L, 7L, Mtime, 5000L), (seen!.Mode, seen.Uid, seen.Gid, seen.Atime, seen.Mtime, seen.Size));
        Assert.Equal(1, _vfs.Statistics.Snapshot().MetadataWrites - writes);

        Assert.Equal(0, await _vfs.FlushAsync(handle));
        await _vfs.ReleaseAsync(handle);
        Assert.Equal(2, _vfs.Statistics.Snapshot().MetadataWrites - writes);
        var row = _meta.GetInode(created.Id)!;
        Assert.Equal((FileModes.Regular | 0x1A4, 1000L, 1001L, 7L, Mtime, 5000L), (row.Mode, row.Uid, row.Gid, row.Atime, row.Mtime, row.Size));
        Assert.True(row.Ctime > created.Ctime);
    }

    [Fact]
    public async Task A_file_written_here_is_reopened_with_the_kernel_pages_its_writes_left()
    {
        var created = await CreateWrittenAsync("written-here"u8.ToArray(), 5000);
        var (status, again, keepCache) = await _vfs.OpenAsync(created.Id, 0);
        Assert.Equal(0, status);
        Assert.True(keepCache);
        Assert.Equal(0, await _vfs.WriteAsync(again, 0, new byte[10]));
        Assert.Equal(0, await _vfs.FlushAsync(again));
        await _vfs.ReleaseAsync(again);
        Assert.True((await _vfs.OpenAsync(created.Id, 0)).KeepCache);
    }

    [Fact]
    public async Task Attributes_built_from_a_row_read_before_a_commit_landed_carry_what_the_commit_left()
    {
        var created = await CreateWrittenAsync("truncated"u8.ToArray(), 100);
        // A reply built on a row read just before the truncation's commit landed (a setattr or a
        // lookup on another thread): by the time it is overlaid, the commit is done and the
        // file's content state gone.
        var before = _meta.GetInode(created.Id)!;
        Assert.Equal(100, before.Size);
        var (status, truncated) = await _vfs.SetAttributesAsync(created.Id, new AttributeChange(), 10);
        Assert.Equal(0, status);
        Assert.Equal(10, truncated!.Size);
        Assert.Equal(10, _meta.GetInode(created.Id)!.Size);

        // The kernel takes the size it is told, and would keep the old one for the attribute timeout.
        var told = _vfs.Remember(before);
        Assert.Equal(10, told.Size);
        Assert.Equal(_meta.GetInode(created.Id)!.Version, told.Version);
    }

    [Fact]
    public async Task A_change_to_a_clean_file_is_committed_at_once_and_a_later_write_moves_the_mtime_again()
    {
        Assert.Equal(0, _vfs.Create(new RequestContext(0, 0, 1), Vfs.Vfs.RootInode, "clean"u8, 0x1A4, 0, out var created, out var handle));
        Assert.Equal(0, await _vfs.FlushAsync(handle));
        var writes = _vfs.Statistics.Snapshot().MetadataWrites;
        Assert.Equal(0, (await _vfs.SetAttributesAsync(created.Id, new AttributeChange { Mode = 0x180, Mtime = 5 }, null)).Status);
        Assert.Equal(1, _vfs.Statistics.Snapshot().MetadataWrites - writes);
        Assert.Equal((FileModes.Regular | 0x180, 5L), (_meta.GetInode(created.Id)!.Mode, _meta.GetInode(created.Id)!.Mtime));

        // Written after an explicit mtime: the write's time wins, as on any filesystem.
        Assert.Equal(0, await _vfs.WriteAsync(handle, 0, new byte[10]));
        Assert.Equal(0, (await _vfs.SetAttributesAsync(created.Id, new AttributeChange { Mtime = 6 }, null)).Status);
        Assert.Equal(0, await _vfs.WriteAsync(handle, 10, new byte[10]));
        Assert.Equal(0, await _vfs.FlushAsync(handle));
        await _vfs.ReleaseAsync(handle);
        Assert.True(_meta.GetInode(created.Id)!.Mtime > 6);
        Assert.Equal(FileModes.Regular | 0x180, _meta.GetInode(created.Id)!.Mode);
    }

    /// <summary>Creates a file in the root, writes <paramref name="length"/> zeros and closes it.</summary>
    private async Task<Inode> CreateWrittenAsync(byte[] name, int length)
    {
        Assert.Equal(0, _vfs.Create(new RequestContext(0, 0, 1), Vfs.Vfs.RootInode, name, 0x1A4, 0, out var created, out var handle));
        Assert.Equal(0, await _vfs.WriteAsync(handle, 0, new byte[length]));
        Assert.Equal(0, await _vfs.FlushAsync(handle));
        await _vfs.ReleaseAsync(handle);
        return created;
    }
}
