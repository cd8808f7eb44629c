using System.Globalization;
using System.Security.Cryptography;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.WriteBack;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// Reads of committed blocks are answered by splicing from the block's file to the kernel: the
/// bytes never pass through the mount process, whose read(2) and pread(2) count
/// (<c>rchar</c> in /proc/PID/io) stays where it was. Reads the splice cannot answer (across
/// blocks, in holes, of data not committed yet, shorter than two pages) are copied, and every
/// read returns the right bytes either way. Descriptors use O_DIRECT, so every read reaches
/// the filesystem.
/// </summary>
public sealed class SplicedReadTests
{
    private const int Block = 64 << 10;
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Reads_of_committed_blocks_do_not_pass_through_the_mount_and_the_others_are_copied_right()
    {
        await using var mount = await TruckeeFsMount.StartAsync(new TruckeeFsMountOptions { ExtraArgs = ["--block-size", "64k"] });
        var path = Path.Combine(mount.Path, "f");
        var data = RandomNumberGenerator.GetBytes(4 * MiB);
        await File.WriteAllBytesAsync(path, data);

        // Whole blocks and parts of one, at least two pages each: spliced.
        Assert.Equal(0, Sys.Open(path, Sys.O_RDONLY | Sys.O_DIRECT, out var fd));
        var before = ReadBytes(mount);
        for (var offset = 0; offset < data.Length; offset += Block) AssertRead(fd, data, offset, Block);
        for (var offset = 0; offset < data.Length; offset += 5 * Block) AssertRead(fd, data, offset + 16384, 32768);
        Assert.InRange(ReadBytes(mount) - before, 0, Block);

        // Up to the end of the file (a short read): spliced. Across a block boundary, or of less
        // than two pages: copied, and right.
        before = ReadBytes(mount);
        AssertRead(fd, data, data.Length - 8192, 65536);
        Assert.InRange(ReadBytes(mount) - before, 0, 4096);
        AssertRead(fd, data, Block - 8192, 16384);
        AssertRead(fd, data, 3 * Block, 4096);
        Assert.True(ReadBytes(mount) - before >= 16384 + 4096, "the reads the splice cannot answer were not copied");
        Assert.Equal(0, Sys.Close(fd));

        // Written and not yet committed (the writer keeps it open): copied from the staged block.
        Assert.Equal(0, Sys.Open(path, Sys.O_RDWR | Sys.O_DIRECT, out var writer));
        var rewritten = RandomNumberGenerator.GetBytes(Block);
        Assert.Equal(0, Sys.PWrite(writer, rewritten, 2 * Block, out _));
        rewritten.CopyTo(data, 2 * Block);
        AssertRead(writer, data, 2 * Block, Block);
        Assert.Equal(0, Sys.Close(writer));

        // A hole: zeros.
        var sparse = Path.Combine(mount.Path, "sparse");
        Assert.Equal(0, Sys.Open(sparse, Sys.O_RDWR | Sys.O_CREAT | Sys.O_DIRECT, 0x1A4, out var holes));
        var tail = RandomNumberGenerator.GetBytes(Block);
        Assert.Equal(0, Sys.PWrite(holes, tail, 4 * Block, out _));
        Assert.Equal(0, Sys.Fsync(holes));
        var expected = new byte[5 * Block];
        tail.CopyTo(expected, 4 * Block);
        AssertRead(holes, expected, Block, Block);
        AssertRead(holes, expected, 4 * Block, Block);
        Assert.Equal(0, Sys.Close(holes));
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Reads_waiting_for_a_download_are_spliced_once_their_bytes_are_in_the_cache()
    {
        await using var fs = await TahoeBackedFilesystem.CreateAsync();
        var data = RandomNumberGenerator.GetBytes(32 * Block);
        await using (var writer = await TruckeeFsMount.StartAsync(fs.Options()))
        {
            await File.WriteAllBytesAsync(Path.Combine(writer.Path, "f"), data);
            TahoeBackedFilesystem.Fsync(Path.Combine(writer.Path, "f"));
            Assert.Equal(0, await writer.UnmountAsync());
        }
        // A new cache, and slow downloads: reads wait for bytes still on their way.
        using var cache = TempDirectory.Create("spliced-cold");
        await using var mount = await TruckeeFsMount.StartAsync(fs.Options(cache.Path));
        fs.Gateway.Faults.Latency = TimeSpan.FromMilliseconds(20);
        fs.Gateway.Faults.DownloadBytesPerSecond = 2 * MiB;
        Assert.Equal(0, Sys.Open(Path.Combine(mount.Path, "f"), Sys.O_RDONLY | Sys.O_DIRECT, out var fd));
        var before = ReadBytes(mount);

        // The second half of each block first: the read waits for a ranged download of it.
        for (var block = 0; block < 32; block += 3)
        {
            AssertRead(fd, data, (block * Block) + (Block / 2), Block / 2);
            AssertRead(fd, data, block * Block, Block / 2);
        }

        Assert.InRange(ReadBytes(mount) - before, 0, Block);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, await mount.UnmountAsync());
    }

    private static void AssertRead(int fd, byte[] data, int offset, int length)
    {
        var buffer = new byte[length];
        Assert.Equal(0, Sys.PRead(fd, buffer, offset, out var count));
        var expected = data.AsSpan(offset, Math.Max(0, Math.Min(length, data.Length - offset)));
        Assert.Equal(expected.Length, count);
        Assert.True(expected.SequenceEqual(buffer.AsSpan(0, count)), string.Create(CultureInfo.InvariantCulture, $"bytes at {offset}, {length} long, differ"));
    }

    /// <summary>Bytes the mount process has read with read(2) and pread(2) so far.</summary>
    private static long ReadBytes(TruckeeFsMount mount) =>
        File.ReadLines($"/proc/{mount.Process.Id}/io").Where(l => l.StartsWith("rchar:", StringComparison.Ordinal))
            .Select(l => long.Parse(l["rchar:".Length..].Trim(), CultureInfo.InvariantCulture)).Single();
}
