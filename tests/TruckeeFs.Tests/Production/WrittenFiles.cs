using System.Security.Cryptography;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// Files a test wrote through a mount with write(2) and close(2), and their random contents, so
/// that it can check later (on the same mount or another) that every byte is still there.
/// </summary>
internal sealed class WrittenFiles
{
    private readonly Dictionary<string, byte[]> _contents = [];

    public int Count => _contents.Count;

    /// <summary>
    /// Creates or replaces <paramref name="name"/> under <paramref name="root"/> with
    /// <paramref name="length"/> random bytes; returns what close(2) returned, 0 or EIO (the data
    /// must survive either way: a failed commit stays staged).
    /// </summary>
    public int Write(string root, string name, int length)
    {
        Assert.Equal(0, Sys.Open(Path.Combine(root, name), Sys.O_WRONLY | Sys.O_CREAT | Sys.O_TRUNC, 0x1A4, out var fd));
        return WriteAndClose(fd, name, length);
    }

    /// <summary>Writes <paramref name="length"/> random bytes into the open, empty file <paramref name="fd"/> (named <paramref name="name"/>) and closes it; returns what close(2) returned.</summary>
    public int WriteAndClose(int fd, string name, int length)
    {
        var bytes = RandomNumberGenerator.GetBytes(length);
        for (var offset = 0; offset < bytes.Length;)
        {
            Assert.Equal(0, Sys.Write(fd, bytes.AsSpan(offset), out var count));
            offset += count;
        }
        _contents[name] = bytes;
        var status = Sys.Close(fd);
        Assert.True(status is 0 or Sys.EIO, $"close({name}) failed with {Sys.ErrnoName(status)}");
        return status;
    }

    /// <summary>Asserts that every file written is under <paramref name="root"/> with the same bytes.</summary>
    public void Verify(string root)
    {
        foreach (var (name, bytes) in _contents)
        {
            var path = Path.Combine(root, name);
            Assert.True(File.Exists(path), $"{name} is missing");
            Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(path)), $"{name} differs");
        }
    }
}
