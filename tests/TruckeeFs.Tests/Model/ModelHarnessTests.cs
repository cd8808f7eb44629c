using TruckeeFs.Testing.Model;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Model;

/// <summary>
/// The model harness on two plain local directories: identical filesystems must agree over long
/// runs, and a system under test changed behind the checker's back must be caught. Both roots are
/// on a filesystem with hard links and user.* xattrs (see <see cref="TempDirectory.CreateWithXattrsAndLinks"/>).
/// </summary>
public sealed class ModelHarnessTests : IDisposable
{
    private readonly TempDirectory _sut = TempDirectory.CreateWithXattrsAndLinks("model-sut");
    private readonly TempDirectory _reference = TempDirectory.CreateWithXattrsAndLinks("model-ref");

    public void Dispose()
    {
        _sut.Dispose();
        _reference.Dispose();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(20260101)]
    public void TwoLocalDirectoriesAgree(int seed)
    {
        using var checker = new ModelChecker(_sut.Path, _reference.Path, seed) { CompareEvery = 200 };
        checker.Run(2000);
        checker.CloseOpenFiles();
        checker.CompareTrees();
        Assert.Equal(2000, checker.Step);
    }

    [Fact]
    public void ARunExercisesTheInterestingAnswers()
    {
        using var checker = new ModelChecker(_sut.Path, _reference.Path, 7);
        checker.Run(4000);
        string[] expected =
        [
            "create:OK", "create:EEXIST", "create:EISDIR", "create:ENAMETOOLONG", "create:ENOTDIR", "create:ENOENT",
            "write:OK", "read:OK", "truncate:OK",
            "rename:OK", "rename:ENOTEMPTY", "rename:EINVAL", "rename:EISDIR", "rename:ENOTDIR", "rename:ENOENT",
            "renameat2(NOREPLACE):OK", "renameat2(NOREPLACE):EEXIST", "renameat2(EXCHANGE):OK", "renameat2(EXCHANGE):ENOENT",
            "link:OK", "link:EPERM", "link:EEXIST",
            "unlink:OK", "unlink:EISDIR", "mkdir:OK", "mkdir:EEXIST", "rmdir:OK", "rmdir:ENOTEMPTY", "rmdir:ENOTDIR",
            "chmod:OK", "symlink:OK", "readlink:OK", "readlink:EINVAL",
            "setxattr:OK", "setxattr:EEXIST", "setxattr:ENODATA", "lsetxattr:EPERM",
            "getxattr:OK", "getxattr:ERANGE", "getxattr:ENODATA", "removexattr:OK", "removexattr:ENODATA", "listxattr:OK",
            "stat:OK", "stat:ENOENT", "stat:ELOOP", "lstat:OK", "readdir:OK", "readdir:ENOTDIR",
            "open:OK", "fd-write:OK", "fd-pwrite:OK", "fd-pwrite:EBADF", "fd-pread:OK", "fd-pread:EBADF", "fd-read:OK",
            "ftruncate:OK", "ftruncate:EINVAL", "fstat:OK", "fsync:OK", "fdatasync:OK", "close:OK",
        ];
        var missing = expected.Where(key => !checker.Coverage.ContainsKey(key)).ToList();
        Assert.True(missing.Count == 0, $"Never seen: {string.Join(", ", missing)}. Seen: {string.Join(", ", checker.Coverage.Select(kv => $"{kv.Key}={kv.Value}"))}");
    }

    [Fact]
    public void TheSameSeedReplaysTheSameSequence()
    {
        using var other = TempDirectory.CreateWithXattrsAndLinks("model-sut2");
        using var otherReference = TempDirectory.CreateWithXattrsAndLinks("model-ref2");
        using var first = new ModelChecker(_sut.Path, _reference.Path, 99);
        using var second = new ModelChecker(other.Path, otherReference.Path, 99);
        first.Run(500);
        second.Run(500);
        Assert.Equal(first.RecentOperations, second.RecentOperations);
        Assert.Equal(first.Coverage.OrderBy(kv => kv.Key), second.Coverage.OrderBy(kv => kv.Key));
        Assert.Empty(TreeSnapshot.Compare(_sut.Path, other.Path));

        using var third = new ModelChecker(TempSubdirectory(other, "3"), TempSubdirectory(otherReference, "3"), 100);
        third.Run(500);
        Assert.NotEqual(first.RecentOperations, third.RecentOperations);
    }

    public static TheoryData<string> Tampering => ["content", "extra file", "mode", "xattr", "hard link broken", "symlink target"];

    [Theory]
    [MemberData(nameof(Tampering))]
    public void ChangingTheSystemUnderTestBehindItsBackIsCaught(string tampering)
    {
        // Run until the tree has something of every kind to tamper with.
        using var checker = new ModelChecker(_sut.Path, _reference.Path, 3);
        do
        {
            checker.Run(100);
        }
        while (checker.Step < 5000 && !(Entries(_sut.Path, [], e => e.IsRegularFile && e.Size > 0 && e.Nlink > 1).Count > 0 && Entries(_sut.Path, [], e => e.IsSymlink).Count > 0));
        checker.CloseOpenFiles();

        var changed = Tamper(tampering);

        var mismatch = Assert.Throws<ModelMismatchException>(checker.CompareTrees);
        Assert.Equal(3, mismatch.Seed);
        Assert.Equal(checker.Step, mismatch.Step);
        Assert.Contains(changed, mismatch.Detail, StringComparison.Ordinal);
        Assert.Contains("seed 3", mismatch.Message, StringComparison.Ordinal);
        Assert.Equal(20, mismatch.RecentOperations.Count);
        Assert.Contains(mismatch.RecentOperations[^1], mismatch.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADisagreeingOperationIsCaughtBeforeAnyTreeComparison()
    {
        using var checker = new ModelChecker(_sut.Path, _reference.Path, 5) { CompareEvery = 1_000_000 };
        checker.Run(300);
        checker.CloseOpenFiles();
        TempDirectory.DeleteTree(_sut.Path);
        Directory.CreateDirectory(_sut.Path);

        var mismatch = Assert.Throws<ModelMismatchException>(() => checker.Run(300));
        Assert.InRange(mismatch.Step, 301, 600);
        Assert.Contains("; reference ", mismatch.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("trees differ", mismatch.Detail, StringComparison.Ordinal);
        Assert.Contains(mismatch.RecentOperations, op => op.StartsWith($"#{mismatch.Step} ", StringComparison.Ordinal));
    }

    private static string TempSubdirectory(TempDirectory parent, string name)
    {
        var path = Path.Combine(parent.Path, name);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Changes the SUT tree in one way and returns the escaped path (or key) a report must name.</summary>
    private string Tamper(string tampering)
    {
        var files = Entries(_sut.Path, [], e => e.IsRegularFile);
        Assert.NotEmpty(files);
        var (path, relative, _) = files.First(f => f.Info.Size > 0);
        switch (tampering)
        {
            case "content":
                Assert.Equal(0, Sys.Open(path, Sys.O_RDWR, out var fd));
                Assert.Equal(0, Sys.PRead(fd, new byte[1] is var b ? b : [], 0, out _));
                b[0] ^= 0x55;
                Assert.Equal(0, Sys.PWrite(fd, b, 0, out _));
                Assert.Equal(0, Sys.Close(fd));
                return PosixPath.Escape(relative);
            case "extra file":
                File.WriteAllText(Path.Combine(_sut.Path, "tampered"), "!");
                return "tampered";
            case "mode":
                Assert.Equal(0, Sys.Stat(path, out var st));
                Assert.Equal(0, Sys.Chmod(path, st.Permissions ^ 0b001_000_000));
                return PosixPath.Escape(relative);
            case "xattr":
                Assert.Equal(0, Sys.SetXattr(path, "user.tampered", "1"u8, 0));
                return PosixPath.Escape(relative);
            case "hard link broken":
                // Replace one name of a hard-linked file by a copy: same contents and mode, but the
                // names no longer share an inode.
                var linked = files.First(f => f.Info.Nlink > 1 && f.Info.Size > 0);
                var aside = PosixPath.Combine(_sut.Path, "aside"u8);
                Assert.Equal(0, Sys.Rename(linked.Path, aside));
                Assert.Equal(0, Sys.Open(linked.Path, Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY, linked.Info.Permissions, out var fdCopy));
                Assert.Equal(0, Sys.Chmod(linked.Path, linked.Info.Permissions));
                Assert.Equal(0, Sys.Open(aside, Sys.O_RDONLY, out var fdOriginal));
                Assert.Equal(0, Sys.CopyFileRange(fdOriginal, 0, fdCopy, 0, linked.Info.Size, out var copied));
                Assert.Equal(linked.Info.Size, copied);
                Assert.Equal(0, Sys.Close(fdCopy));
                Assert.Equal(0, Sys.Close(fdOriginal));
                Assert.Equal(0, Sys.Unlink(aside));
                return "links:";
            default:
                var symlink = Entries(_sut.Path, [], e => e.IsSymlink).First();
                Assert.Equal(0, Sys.Unlink(symlink.Path));
                Assert.Equal(0, Sys.Symlink("elsewhere", symlink.Path));
                return PosixPath.Escape(symlink.Relative);
        }
    }

    private static List<(PosixPath Path, byte[] Relative, StatInfo Info)> Entries(PosixPath directory, byte[] relative, Func<StatInfo, bool> filter)
    {
        var found = new List<(PosixPath, byte[], StatInfo)>();
        Assert.Equal(0, Sys.ReadDirectory(directory, out var entries));
        foreach (var entry in entries.Where(e => !e.IsDotOrDotDot).OrderBy(e => e.Name, Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b))))
        {
            var path = PosixPath.Combine(directory, entry.Name);
            byte[] rel = relative.Length == 0 ? entry.Name : [.. relative, (byte)'/', .. entry.Name];
            Assert.Equal(0, Sys.LStat(path, out var info));
            if (filter(info))
            {
                found.Add((path, rel, info));
            }

            if (info.IsDirectory)
            {
                found.AddRange(Entries(path, rel, filter));
            }
        }

        return found;
    }
}
