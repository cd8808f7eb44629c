using TruckeeFs.Cache;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Cache;

/// <summary>
/// <see cref="StagedBlock.CopyFrom"/>, the copy a partial write of a stored block starts from:
/// in the kernel within one filesystem, through a buffer from another (tmpfs here).
/// </summary>
public sealed class StagedBlockTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.CreateWithXattrsAndLinks("staged-block");
    private readonly List<string> _elsewhere = [];

    public void Dispose()
    {
        foreach (var file in _elsewhere) File.Delete(file);
        _directory.Dispose();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData((3 << 20) + 12345)]
    public void A_copy_from_the_same_filesystem_holds_the_source_bytes(int length) =>
        AssertCopies(Path.Combine(_directory.Path, "source"), length);

    [Fact]
    public void A_copy_from_another_filesystem_holds_the_source_bytes()
    {
        Assert.True(Directory.Exists("/dev/shm"), "this test needs /dev/shm, a filesystem apart from the staging folder's");
        var source = Path.Combine("/dev/shm", $"truckeefs-staged-block-{Guid.NewGuid():N}");
        _elsewhere.Add(source);
        AssertCopies(source, (3 << 20) + 12345);
    }

    [Fact]
    public void A_copy_longer_than_its_source_keeps_the_bytes_there_are()
    {
        var source = Path.Combine(_directory.Path, "short");
        var data = Bytes(5000);
        File.WriteAllBytes(source, data);
        var block = StagedBlock.Create(0, Path.Combine(_directory.Path, "block"));
        using (var handle = File.OpenHandle(source))
            block.CopyFrom(handle, 8192);

        var read = new byte[8192];
        Assert.Equal(5000, block.Read(read, 0));
        Assert.Equal(data, read[..5000]);
        block.Delete();
    }

    private void AssertCopies(string source, int length)
    {
        var data = Bytes(length);
        File.WriteAllBytes(source, data);
        var block = StagedBlock.Create(0, Path.Combine(_directory.Path, $"block-{length}"));
        using (var handle = File.OpenHandle(source))
            block.CopyFrom(handle, length);
        // A later write lands on the copy, not on the source.
        if (length > 0) block.Write([0xff], length / 2);

        Assert.Equal(length, block.Length);
        var copy = new byte[length];
        Assert.Equal(length, block.Read(copy, 0));
        if (length > 0) data[length / 2] = 0xff;
        Assert.Equal(data, copy);
        Assert.Equal(Bytes(length), File.ReadAllBytes(source));
        block.Delete();
    }

    private static byte[] Bytes(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        return data;
    }
}
