using System.Security.Cryptography;

namespace TruckeeFs.Operations;

/// <summary>
/// The functionality self-test: ordinary file operations through the mounted filesystem, in a
/// scratch directory of its own (a unique hidden name at the root), removed afterwards whether
/// the test passes or not. It touches nothing else, so it is safe on a filesystem holding data.
/// </summary>
public static class FunctionalityTest
{
    // More than one FUSE write (1 MiB) and not a multiple of anything, so partial blocks are exercised.
    private const int FileLength = (1 << 20) + 12345;

    /// <summary>Runs the test in <paramref name="mountpoint"/>; never throws for a failing step.</summary>
    public static SelfTestResult Run(string mountpoint)
    {
        var scratch = Path.Combine(mountpoint, $".truckeefs-selftest-{Guid.NewGuid():N}");
        var step = "create the scratch directory";
        try
        {
            Directory.CreateDirectory(scratch);
            var data = RandomNumberGenerator.GetBytes(FileLength);
            var first = Path.Combine(scratch, "first");
            step = "create and write a file";
            File.WriteAllBytes(first, data);
            step = "read the file back";
            Expect(File.ReadAllBytes(first).AsSpan().SequenceEqual(data), "the bytes read differ from the bytes written");

            step = "append to the file";
            var tail = RandomNumberGenerator.GetBytes(4096);
            using (var stream = new FileStream(first, FileMode.Append)) stream.Write(tail);
            Expect(new FileInfo(first).Length == FileLength + tail.Length, "the size after appending is wrong");

            step = "move the file into a subdirectory";
            var sub = Directory.CreateDirectory(Path.Combine(scratch, "sub")).FullName;
            var moved = Path.Combine(sub, "moved");
            File.Move(first, moved);
            Expect(!File.Exists(first) && File.Exists(moved), "the file is not where it was moved to");

            step = "copy the file";
            var copy = Path.Combine(scratch, "copy");
            File.Copy(moved, copy);
            var copied = File.ReadAllBytes(copy);
            Expect(copied.AsSpan(0, FileLength).SequenceEqual(data) && copied.AsSpan(FileLength).SequenceEqual(tail), "the copy's bytes differ from the original's");

            step = "list the directory";
            var names = Directory.EnumerateFileSystemEntries(scratch).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
            Expect(names.SequenceEqual(["copy", "sub"]), $"the listing shows [{string.Join(", ", names)}] instead of [copy, sub]");

            step = "delete the files and directories";
            File.Delete(copy);
            File.Delete(moved);
            Directory.Delete(sub);
            Directory.Delete(scratch);
            Expect(!Directory.Exists(scratch), "the scratch directory is still there after deleting it");
            return new("functionality", true, $"created, wrote, read, appended, moved, copied, listed and deleted files in {mountpoint}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SelfTestFailure)
        {
            Clean(scratch);
            return new("functionality", false, $"in {scratch}: cannot {step}: {e.Message}");
        }
    }

    private static void Expect(bool condition, string failure)
    {
        if (!condition) throw new SelfTestFailure(failure);
    }

    private static void Clean(string scratch)
    {
        try
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The failure already reported is the news; a leftover scratch directory is named in it.
        }
    }

    private sealed class SelfTestFailure(string message) : Exception(message);
}
