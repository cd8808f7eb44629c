using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Testkit;

/// <summary>
/// The syscall kit against the local filesystem. The temp directory comes from
/// <see cref="TempDirectory.CreateWithXattrsAndLinks"/>: /tmp here is ext4, which has user.*
/// xattrs; a tmpfs /tmp on an older kernel would not, and the kit falls back to /var/tmp.
/// Where possible, values are checked against an independent reader (coreutils stat, .NET).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class PosixTests : IDisposable
{
    // A descriptor that is certainly not open. A number just closed is not: another test's
    // thread may be given it again at once.
    private const int Closed = -1;

    private const uint Rw_r__r__ = 0b110_100_100;
    private readonly TempDirectory _dir = TempDirectory.CreateWithXattrsAndLinks("posix-test");

    public void Dispose() => _dir.Dispose();

    private string P(string name) => Path.Combine(_dir.Path, name);

    private string MakeFile(string name, string contents = "")
    {
        File.WriteAllText(P(name), contents);
        return P(name);
    }

    private static int OpenOk(PosixPath path, int flags, uint mode = Rw_r__r__)
    {
        Assert.Equal(0, Sys.Open(path, flags, mode, out var fd));
        return fd;
    }

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} failed: {process.StandardError.ReadToEnd()}");
        return output;
    }

    [Fact]
    public void StatWritesExactly144BytesAndDecodesLikeCoreutils()
    {
        var file = MakeFile("f", new string('x', 5000));
        Assert.Equal(0, Sys.Link(file, P("g")));
        Assert.Equal(0, Sys.Chmod(file, 0b110_100_000));
        Assert.Equal(0, Sys.Utimensat(file, new Timespec(1_600_000_000, 123_456_789), new Timespec(1_700_000_000, 987_654_321)));

        var raw = new byte[200];
        raw.AsSpan().Fill(0xAA);
        Assert.Equal(0, Sys.LStatRaw(file, raw));
        Assert.All(raw[Sys.StatSize..], b => Assert.Equal(0xAA, b));
        Assert.All(raw[120..Sys.StatSize], b => Assert.Equal(0, b));

        Assert.Equal(0, Sys.Stat(file, out var st));
        var fields = Run("stat", "--printf", "%i %h %f %s %b %B %u %g %.9X %.9Y %.9Z %d", file).Split(' ');
        Assert.Equal(ulong.Parse(fields[0], CultureInfo.InvariantCulture), st.Ino);
        Assert.Equal(2UL, st.Nlink);
        Assert.Equal(Convert.ToUInt32(fields[2], 16), st.Mode);
        Assert.Equal(Sys.S_IFREG | 0b110_100_000, st.Mode);
        Assert.Equal(5000, st.Size);
        Assert.Equal(long.Parse(fields[4], CultureInfo.InvariantCulture), st.Blocks);
        Assert.Equal(uint.Parse(fields[6], CultureInfo.InvariantCulture), st.Uid);
        Assert.Equal(uint.Parse(fields[7], CultureInfo.InvariantCulture), st.Gid);
        Assert.Equal(1_600_000_000_123_456_789L, st.AtimeNs);
        Assert.Equal(1_700_000_000_987_654_321L, st.MtimeNs);
        Assert.Equal(long.Parse(fields[10].Replace(".", "", StringComparison.Ordinal), CultureInfo.InvariantCulture), st.CtimeNs);
        Assert.Equal(ulong.Parse(fields[11], CultureInfo.InvariantCulture), st.Dev);
        Assert.True(st.BlkSize > 0);
        Assert.True(st.IsRegularFile);
    }

    [Fact]
    public void LStatSeesTheSymlinkAndStatItsTarget()
    {
        var file = MakeFile("target", "12345");
        Assert.Equal(0, Sys.Symlink("target", P("link")));
        Assert.Equal(0, Sys.LStat(P("link"), out var l));
        Assert.True(l.IsSymlink);
        Assert.Equal(6, l.Size);
        Assert.Equal(0, Sys.Stat(P("link"), out var s));
        Assert.True(s.IsRegularFile);
        Assert.Equal(5, s.Size);
        Assert.Equal(0, Sys.Stat(_dir.Path, out var d));
        Assert.True(d.IsDirectory);
        Assert.Equal(Sys.ENOENT, Sys.Stat(P("missing"), out _));
        Assert.Equal(Sys.ENOTDIR, Sys.Stat(Path.Combine(file, "x"), out _));
    }

    [Fact]
    public void FStatOfAnOpenUnlinkedFileShowsNoLinks()
    {
        var fd = OpenOk(P("f"), Sys.O_CREAT | Sys.O_RDWR);
        Assert.Equal(0, Sys.Unlink(P("f")));
        Assert.Equal(0, Sys.PWrite(fd, "abc"u8, 0, out _));
        Assert.Equal(0, Sys.FStat(fd, out var st));
        Assert.Equal(0UL, st.Nlink);
        Assert.Equal(3, st.Size);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(Sys.EBADF, Sys.FStat(Closed, out _));
    }

    [Fact]
    public void OpenFlagsBehaveAsDocumented()
    {
        var file = MakeFile("f", "hello");
        Assert.Equal(Sys.EEXIST, Sys.Open(file, Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY, Rw_r__r__, out var fd));
        Assert.Equal(-1, fd);
        Assert.Equal(Sys.ENOENT, Sys.Open(P("missing"), Sys.O_RDONLY, out _));
        Assert.Equal(Sys.ENOTDIR, Sys.Open(file, Sys.O_RDONLY | Sys.O_DIRECTORY, out _));
        Assert.Equal(Sys.EISDIR, Sys.Open(_dir.Path, Sys.O_WRONLY, out _));
        Assert.Equal(0, Sys.Symlink("f", P("link")));
        Assert.Equal(Sys.ELOOP, Sys.Open(P("link"), Sys.O_RDONLY | Sys.O_NOFOLLOW, out _));

        fd = OpenOk(P("new"), Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY, 0b110_000_000);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, Sys.Stat(P("new"), out var created));
        // 0600 survives every usual umask (022, 002, 077).
        Assert.Equal(0b110_000_000u, created.Permissions);

        fd = OpenOk(file, Sys.O_WRONLY | Sys.O_APPEND);
        Assert.Equal(0, Sys.Write(fd, " world"u8, out var written));
        Assert.Equal(6, written);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal("hello world", File.ReadAllText(file));

        fd = OpenOk(file, Sys.O_WRONLY | Sys.O_TRUNC);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, new FileInfo(file).Length);

        fd = OpenOk(_dir.Path, Sys.O_RDONLY | Sys.O_DIRECTORY);
        Assert.Equal(0, Sys.Close(fd));
    }

    [Fact]
    public void ReadWritePositionsAndHoles()
    {
        var fd = OpenOk(P("f"), Sys.O_CREAT | Sys.O_RDWR);
        Assert.Equal(0, Sys.Write(fd, "abcdef"u8, out var n));
        Assert.Equal(6, n);
        Assert.Equal(0, Sys.LSeek(fd, 0, Sys.SEEK_CUR, out var position));
        Assert.Equal(6, position);
        Assert.Equal(0, Sys.LSeek(fd, 2, Sys.SEEK_SET, out _));
        var buffer = new byte[10];
        Assert.Equal(0, Sys.Read(fd, buffer, out n));
        Assert.Equal("cdef", Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Equal(0, Sys.Read(fd, buffer, out n));
        Assert.Equal(0, n);

        // pwrite far past the end leaves a hole that reads as zeros and that SEEK_HOLE/SEEK_DATA find.
        const long Far = 4 * 1024 * 1024;
        Assert.Equal(0, Sys.PWrite(fd, "Z"u8, Far, out n));
        Assert.Equal(1, n);
        Assert.Equal(0, Sys.PRead(fd, buffer, Far - 5, out n));
        Assert.Equal(6, n);
        Assert.Equal([0, 0, 0, 0, 0, (byte)'Z'], buffer[..6]);
        Assert.Equal(0, Sys.LSeek(fd, 0, Sys.SEEK_HOLE, out var hole));
        Assert.InRange(hole, 6, Far - 1);
        Assert.Equal(0, Sys.LSeek(fd, hole, Sys.SEEK_DATA, out var data));
        Assert.InRange(data, hole + 1, Far);
        Assert.Equal(Sys.ENXIO, Sys.LSeek(fd, Far + 1, Sys.SEEK_DATA, out position));
        Assert.Equal(-1, position);
        Assert.Equal(0, Sys.LSeek(fd, 0, Sys.SEEK_END, out position));
        Assert.Equal(Far + 1, position);

        var big = new byte[Far + 1];
        Assert.Equal(0, Sys.PReadFully(fd, big, 0, out n));
        Assert.Equal(Far + 1, n);
        Assert.Equal(0, Sys.Fsync(fd));
        Assert.Equal(0, Sys.Fdatasync(fd));
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(Sys.EBADF, Sys.Read(Closed, buffer, out n));
        Assert.Equal(0, n);
        Assert.Equal(Sys.EBADF, Sys.Write(Closed, "x"u8, out _));
        Assert.Equal(Sys.EBADF, Sys.Fsync(Closed));
        Assert.Equal(Sys.EBADF, Sys.Close(Closed));
    }

    [Fact]
    public void WrongAccessModeIsRefused()
    {
        var file = MakeFile("f", "data");
        var fd = OpenOk(file, Sys.O_RDONLY);
        Assert.Equal(Sys.EBADF, Sys.Write(fd, "x"u8, out _));
        Assert.Equal(Sys.EINVAL, Sys.Ftruncate(fd, 0));
        Assert.Equal(0, Sys.Close(fd));
        fd = OpenOk(file, Sys.O_WRONLY);
        Assert.Equal(Sys.EBADF, Sys.Read(fd, new byte[4], out _));
        Assert.Equal(0, Sys.Close(fd));
    }

    [Fact]
    public void TruncateGrowsAndShrinks()
    {
        var file = MakeFile("f", "0123456789");
        Assert.Equal(0, Sys.Truncate(file, 4));
        Assert.Equal("0123", File.ReadAllText(file));
        Assert.Equal(0, Sys.Truncate(file, 100_000));
        Assert.Equal(100_000, new FileInfo(file).Length);
        var fd = OpenOk(file, Sys.O_RDWR);
        Assert.Equal(0, Sys.Ftruncate(fd, 2));
        Assert.Equal(0, Sys.FStat(fd, out var st));
        Assert.Equal(2, st.Size);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(Sys.ENOENT, Sys.Truncate(P("missing"), 0));
        Assert.Equal(Sys.EISDIR, Sys.Truncate(_dir.Path, 0));
        Assert.Equal(Sys.EINVAL, Sys.Truncate(file, -1));
    }

    [Fact]
    public void DirectoriesAndUnlinkErrors()
    {
        Assert.Equal(0, Sys.Mkdir(P("d"), 0b111_101_101));
        Assert.Equal(Sys.EEXIST, Sys.Mkdir(P("d"), 0b111_101_101));
        Assert.Equal(Sys.ENOENT, Sys.Mkdir(P("no/d"), 0b111_101_101));
        MakeFile("d/f");
        Assert.Equal(Sys.ENOTEMPTY, Sys.Rmdir(P("d")));
        Assert.Equal(Sys.ENOTDIR, Sys.Rmdir(P("d/f")));
        Assert.Equal(Sys.EISDIR, Sys.Unlink(P("d")));
        Assert.Equal(0, Sys.Unlink(P("d/f")));
        Assert.Equal(Sys.ENOENT, Sys.Unlink(P("d/f")));
        Assert.Equal(0, Sys.Rmdir(P("d")));
        Assert.Equal(Sys.ENOENT, Sys.Rmdir(P("d")));
        Assert.Equal(0, Sys.Mkdir(P("d2"), 0b111_101_101));
        Assert.Equal(0, Sys.Stat(_dir.Path, out var parent));
        Assert.Equal(3UL, parent.Nlink);
    }

    [Fact]
    public void NamesLongerThanNameMaxAreRefused()
    {
        var ok = new string('a', Sys.NAME_MAX);
        var tooLong = new string('a', Sys.NAME_MAX + 1);
        Assert.Equal(0, Sys.Mkdir(P(ok), 0b111_101_101));
        Assert.Equal(Sys.ENAMETOOLONG, Sys.Mkdir(P(tooLong), 0b111_101_101));
        Assert.Equal(Sys.ENAMETOOLONG, Sys.Open(P(tooLong), Sys.O_CREAT | Sys.O_WRONLY, Rw_r__r__, out _));
    }

    [Fact]
    public void HardLinks()
    {
        var file = MakeFile("f", "x");
        Assert.Equal(0, Sys.Link(file, P("g")));
        Assert.Equal(0, Sys.Stat(file, out var a));
        Assert.Equal(0, Sys.Stat(P("g"), out var b));
        Assert.Equal(2UL, a.Nlink);
        Assert.Equal(a.Ino, b.Ino);
        Assert.Equal(Sys.EEXIST, Sys.Link(file, P("g")));
        Assert.Equal(Sys.ENOENT, Sys.Link(P("missing"), P("h")));
        Assert.Equal(0, Sys.Mkdir(P("d"), 0b111_101_101));
        Assert.Equal(Sys.EPERM, Sys.Link(P("d"), P("d-link")));
    }

    [Fact]
    public void SymlinksRoundTripTheirTargetBytes()
    {
        byte[] target = [.. Encoding.ASCII.GetBytes(new string('t', 300)), 0xff, 0xfe];
        Assert.Equal(0, Sys.Symlink(target, P("long")));
        Assert.Equal(0, Sys.ReadLink(P("long"), out var read));
        Assert.Equal(target, read);
        Assert.Equal(Sys.EEXIST, Sys.Symlink("x", P("long")));
        Assert.Equal(Sys.ENOENT, Sys.Symlink("", P("empty")));
        MakeFile("f");
        Assert.Equal(Sys.EINVAL, Sys.ReadLink(P("f"), out read));
        Assert.Empty(read);
        Assert.Equal(Sys.ENOENT, Sys.ReadLink(P("missing"), out _));
    }

    [Fact]
    public void MknodMakesEveryType()
    {
        Assert.Equal(0, Sys.Mknod(P("reg"), Sys.S_IFREG | Rw_r__r__, 0));
        Assert.Equal(0, Sys.Mknod(P("fifo"), Sys.S_IFIFO | Rw_r__r__, 0));
        Assert.Equal(0, Sys.Mknod(P("sock"), Sys.S_IFSOCK | Rw_r__r__, 0));
        Assert.Equal(0, Sys.LStat(P("reg"), out var reg));
        Assert.Equal(0, Sys.LStat(P("fifo"), out var fifo));
        Assert.Equal(0, Sys.LStat(P("sock"), out var sock));
        Assert.Equal(Sys.S_IFREG, reg.FileType);
        Assert.Equal(Sys.S_IFIFO, fifo.FileType);
        Assert.Equal(Sys.S_IFSOCK, sock.FileType);
        Assert.Equal(Sys.EEXIST, Sys.Mknod(P("fifo"), Sys.S_IFIFO | Rw_r__r__, 0));

        // Device nodes need CAP_MKNOD.
        var chr = Sys.Mknod(P("chr"), Sys.S_IFCHR | Rw_r__r__, Sys.MakeDev(1, 3));
        var blk = Sys.Mknod(P("blk"), Sys.S_IFBLK | Rw_r__r__, Sys.MakeDev(259, 70_000));
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Equal(Sys.EPERM, chr);
            return;
        }

        Assert.Equal(0, chr);
        Assert.Equal(0, blk);
        Assert.Equal(0, Sys.LStat(P("chr"), out var c));
        Assert.Equal(0, Sys.LStat(P("blk"), out var b));
        Assert.Equal(Sys.S_IFCHR, c.FileType);
        Assert.Equal(Sys.S_IFBLK, b.FileType);
        Assert.Equal((1u, 3u), (Sys.Major(c.Rdev), Sys.Minor(c.Rdev)));
        Assert.Equal((259u, 70_000u), (Sys.Major(b.Rdev), Sys.Minor(b.Rdev)));
    }

    [Theory]
    [InlineData(1u, 3u)]
    [InlineData(8u, 17u)]
    [InlineData(259u, 70_000u)]
    [InlineData(0x12345u, 0xabcdefu)]
    [InlineData(0xfffffu, 0xfffffu)]
    public void MakeDevMatchesGlibc(uint major, uint minor)
    {
        // glibc also exports the encoding as functions: an independent implementation to agree with.
        var device = Sys.MakeDev(major, minor);
        Assert.Equal(gnu_dev_makedev(major, minor), device);
        Assert.Equal(major, Sys.Major(device));
        Assert.Equal(minor, Sys.Minor(device));
    }

    [Fact]
    public void StatReportsTheRdevOfDevices()
    {
        Assert.Equal(0, Sys.Stat("/dev/null", out var devNull));
        Assert.Equal(Sys.S_IFCHR, devNull.FileType);
        Assert.Equal((1u, 3u), (Sys.Major(devNull.Rdev), Sys.Minor(devNull.Rdev)));
    }

    [Fact]
    public void RenameReplacesFilesAndRefusesBadMoves()
    {
        MakeFile("a", "A");
        MakeFile("b", "B");
        Assert.Equal(0, Sys.Rename(P("a"), P("b")));
        Assert.Equal("A", File.ReadAllText(P("b")));
        Assert.False(File.Exists(P("a")));
        Assert.Equal(Sys.ENOENT, Sys.Rename(P("a"), P("c")));

        Directory.CreateDirectory(P("d/sub"));
        Directory.CreateDirectory(P("full/x"));
        Directory.CreateDirectory(P("empty"));
        Assert.Equal(Sys.EINVAL, Sys.Rename(P("d"), P("d/sub/d")));
        Assert.Equal(Sys.ENOTEMPTY, Sys.Rename(P("d"), P("full")));
        Assert.Equal(Sys.EISDIR, Sys.Rename(P("b"), P("empty")));
        Assert.Equal(Sys.ENOTDIR, Sys.Rename(P("d"), P("b")));
        Assert.Equal(0, Sys.Rename(P("d"), P("empty")));
        Assert.True(Directory.Exists(P("empty/sub")));
    }

    public static TheoryData<string> RenameAt2Paths => ["public", "wrapper", "syscall"];

    [Theory]
    [MemberData(nameof(RenameAt2Paths))]
    public void RenameAt2NoReplaceAndExchange(string via)
    {
        Func<PosixPath, PosixPath, uint, int> renameAt2 = via switch
        {
            "wrapper" => Sys.RenameAt2ViaWrapper,
            "syscall" => Sys.RenameAt2ViaSyscall,
            _ => Sys.RenameAt2,
        };
        MakeFile("a", "A");
        MakeFile("b", "B");
        Directory.CreateDirectory(P("d"));
        Assert.Equal(Sys.EEXIST, renameAt2(P("a"), P("b"), Sys.RENAME_NOREPLACE));
        Assert.Equal(0, renameAt2(P("a"), P("c"), Sys.RENAME_NOREPLACE));
        Assert.Equal(0, renameAt2(P("c"), P("b"), Sys.RENAME_EXCHANGE));
        Assert.Equal("B", File.ReadAllText(P("c")));
        Assert.Equal("A", File.ReadAllText(P("b")));
        Assert.Equal(0, renameAt2(P("b"), P("d"), Sys.RENAME_EXCHANGE));
        Assert.True(Directory.Exists(P("b")));
        Assert.Equal("A", File.ReadAllText(P("d")));
        Assert.Equal(Sys.ENOENT, renameAt2(P("c"), P("missing"), Sys.RENAME_EXCHANGE));
        Assert.Equal(Sys.EINVAL, renameAt2(P("c"), P("d"), Sys.RENAME_EXCHANGE | Sys.RENAME_NOREPLACE));
    }

    [Fact]
    public void ThisGlibcHasTheRenameat2Wrapper()
    {
        // Debian bookworm ships glibc 2.36; the syscall fallback is for C libraries before 2.28.
        Assert.True(Sys.HasRenameat2Wrapper);
    }

    [Fact]
    public void ChmodAndChown()
    {
        var file = MakeFile("f");
        Assert.Equal(0, Sys.Chmod(file, 0b111_000_000 | 0x200));
        Assert.Equal(0, Sys.Stat(file, out var st));
        Assert.Equal(0b111_000_000u | 0x200, st.Permissions);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.StickyBit, File.GetUnixFileMode(file));
        Assert.Equal(Sys.ENOENT, Sys.Chmod(P("missing"), 0));

        Assert.Equal(0, Sys.Chown(file, st.Uid, st.Gid));
        Assert.Equal(0, Sys.Symlink("f", P("link")));
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Equal(Sys.EPERM, Sys.Chown(file, 4321, 4321));
            return;
        }

        Assert.Equal(0, Sys.LChown(P("link"), 1234, 5678));
        Assert.Equal(0, Sys.LStat(P("link"), out var link));
        Assert.Equal(0, Sys.Stat(file, out var target));
        Assert.Equal((1234u, 5678u), (link.Uid, link.Gid));
        Assert.Equal((st.Uid, st.Gid), (target.Uid, target.Gid));
        Assert.Equal(0, Sys.Chown(P("link"), 4321, uint.MaxValue));
        Assert.Equal(0, Sys.Stat(file, out target));
        Assert.Equal((4321u, st.Gid), (target.Uid, target.Gid));
    }

    [Fact]
    public void UtimensatSetsOmitsAndNows()
    {
        var file = MakeFile("f");
        Assert.Equal(0, Sys.Utimensat(file, Timespec.FromNanoseconds(1_000_000_000_000_000_001), Timespec.FromNanoseconds(2_000_000_000_500_000_000)));
        Assert.Equal(0, Sys.Stat(file, out var st));
        Assert.Equal(1_000_000_000_000_000_001, st.AtimeNs);
        Assert.Equal(2_000_000_000_500_000_000, st.MtimeNs);

        Assert.Equal(0, Sys.Utimensat(file, Timespec.Now, Timespec.Omit));
        Assert.Equal(0, Sys.Stat(file, out var after));
        Assert.Equal(st.MtimeNs, after.MtimeNs);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000L;
        Assert.InRange(after.AtimeNs, now - 60_000_000_000L, now + 60_000_000_000L);

        Assert.Equal(0, Sys.Symlink("f", P("link")));
        Assert.Equal(0, Sys.Utimensat(P("link"), new Timespec(5, 0), new Timespec(6, 0), Sys.AT_SYMLINK_NOFOLLOW));
        Assert.Equal(0, Sys.LStat(P("link"), out var link));
        Assert.Equal(6_000_000_000L, link.MtimeNs);
        Assert.Equal(0, Sys.Stat(file, out var target));
        Assert.Equal(st.MtimeNs, target.MtimeNs);
        Assert.Equal(Sys.EINVAL, Sys.Utimensat(file, new Timespec(0, 1_000_000_000), Timespec.Omit));
        Assert.Equal(new Timespec(-2, 999_999_999), Timespec.FromNanoseconds(-1_000_000_001));
    }

    [Fact]
    public void ExtendedAttributes()
    {
        var file = MakeFile("f");
        Assert.Equal(0, Sys.SetXattr(file, "user.a", "hello"u8, 0));
        Assert.Equal(Sys.EEXIST, Sys.SetXattr(file, "user.a", "x"u8, Sys.XATTR_CREATE));
        Assert.Equal(Sys.ENODATA, Sys.SetXattr(file, "user.b", "x"u8, Sys.XATTR_REPLACE));
        Assert.Equal(0, Sys.SetXattr(file, "user.b", [], Sys.XATTR_CREATE));
        Assert.Equal(0, Sys.SetXattr(file, "user.a", "hello!"u8, Sys.XATTR_REPLACE));

        Assert.Equal(0, Sys.GetXattr(file, "user.a", [], out var size));
        Assert.Equal(6, size);
        Assert.Equal(Sys.ERANGE, Sys.GetXattr(file, "user.a", new byte[5], out _));
        var buffer = new byte[6];
        Assert.Equal(0, Sys.GetXattr(file, "user.a", buffer, out var length));
        Assert.Equal("hello!"u8.ToArray(), buffer[..length]);
        Assert.Equal(0, Sys.GetXattr(file, "user.b", out byte[] empty));
        Assert.Empty(empty);
        Assert.Equal(Sys.ENODATA, Sys.GetXattr(file, "user.c", out byte[] missing));
        Assert.Empty(missing);

        Assert.Equal(0, Sys.ListXattr(file, out var names));
        Assert.Equal(["user.a", "user.b"], names.Where(n => n.StartsWith("user.", StringComparison.Ordinal)).Order());
        Assert.Equal(0, Sys.RemoveXattr(file, "user.a"));
        Assert.Equal(Sys.ENODATA, Sys.RemoveXattr(file, "user.a"));
        Assert.Equal(Sys.ENOENT, Sys.ListXattr(P("missing"), out _));

        // Through a symlink the target's attributes are meant. On the link itself Linux refuses to
        // change user.* (EPERM) and finds none to read (ENODATA).
        Assert.Equal(0, Sys.Symlink("f", P("link")));
        Assert.Equal(0, Sys.GetXattr(P("link"), "user.b", out byte[] viaLink));
        Assert.Empty(viaLink);
        Assert.Equal(Sys.EPERM, Sys.LSetXattr(P("link"), "user.x", "1"u8, 0));
        Assert.Equal(Sys.ENODATA, Sys.LGetXattr(P("link"), "user.b", out byte[] _));
        Assert.Equal(Sys.ENODATA, Sys.LGetXattr(P("link"), "user.b", new byte[4], out _));
        Assert.Equal(Sys.EPERM, Sys.LRemoveXattr(P("link"), "user.b"));
        Assert.Equal(0, Sys.LListXattr(P("link"), out var linkNames));
        Assert.DoesNotContain(linkNames, n => n.StartsWith("user.", StringComparison.Ordinal));
    }

    [Fact]
    public void FallocateModes()
    {
        var fd = OpenOk(P("f"), Sys.O_CREAT | Sys.O_RDWR);
        Assert.Equal(0, Sys.Fallocate(fd, 0, 0, 1 << 20));
        Assert.Equal(0, Sys.FStat(fd, out var st));
        Assert.Equal(1 << 20, st.Size);

        Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_KEEP_SIZE, 0, 2 << 20));
        Assert.Equal(0, Sys.FStat(fd, out var kept));
        Assert.Equal(1 << 20, kept.Size);
        Assert.True(kept.Blocks * 512 >= 2 << 20);

        var ones = new byte[1 << 20];
        ones.AsSpan().Fill(1);
        Assert.Equal(0, Sys.PWrite(fd, ones, 0, out _));
        Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_PUNCH_HOLE | Sys.FALLOC_FL_KEEP_SIZE, 4096, 8192));
        Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_ZERO_RANGE, 65536, 10));
        var back = new byte[1 << 20];
        Assert.Equal(0, Sys.PReadFully(fd, back, 0, out _));
        Assert.All(back[4096..12288], b => Assert.Equal(0, b));
        Assert.All(back[65536..65546], b => Assert.Equal(0, b));
        Assert.Equal(1, back[4095]);
        Assert.Equal(1, back[12288]);
        Assert.Equal(1, back[65546]);
        Assert.Equal(0, Sys.LSeek(fd, 0, Sys.SEEK_HOLE, out var hole));
        Assert.Equal(4096, hole);

        Assert.Equal(Sys.EOPNOTSUPP, Sys.Fallocate(fd, Sys.FALLOC_FL_PUNCH_HOLE, 0, 4096));
        Assert.Equal(Sys.EINVAL, Sys.Fallocate(fd, 0, 0, 0));
        Assert.Equal(0, Sys.Close(fd));
    }

    [Fact]
    public void CopyFileRangeWithAndWithoutOffsets()
    {
        var source = MakeFile("src", "0123456789");
        var fdIn = OpenOk(source, Sys.O_RDONLY);
        var fdOut = OpenOk(P("dst"), Sys.O_CREAT | Sys.O_WRONLY);
        Assert.Equal(0, Sys.CopyFileRange(fdIn, 2, fdOut, 100, 5, out var copied));
        Assert.Equal(5, copied);
        Assert.Equal(0, Sys.LSeek(fdIn, 0, Sys.SEEK_CUR, out var inPosition));
        Assert.Equal(0, inPosition);

        Assert.Equal(0, Sys.CopyFileRange(fdIn, null, fdOut, null, 3, out copied));
        Assert.Equal(3, copied);
        Assert.Equal(0, Sys.LSeek(fdIn, 0, Sys.SEEK_CUR, out inPosition));
        Assert.Equal(0, Sys.LSeek(fdOut, 0, Sys.SEEK_CUR, out var outPosition));
        Assert.Equal((3L, 3L), (inPosition, outPosition));
        Assert.Equal(0, Sys.Close(fdOut));
        Assert.Equal(0, Sys.Close(fdIn));

        var result = File.ReadAllBytes(P("dst"));
        Assert.Equal(105, result.Length);
        Assert.Equal("012"u8.ToArray(), result[..3]);
        Assert.Equal("23456"u8.ToArray(), result[100..]);
        Assert.Equal(Sys.EBADF, Sys.CopyFileRange(Closed, 0, Closed, 0, 1, out copied));
        Assert.Equal(-1, copied);
    }

    [Fact]
    public void StatVfsAgreesWithCoreutils()
    {
        Assert.Equal(0, Sys.StatVfs(_dir.Path, out var vfs));
        var fields = Run("stat", "-f", "--printf", "%S %s %b %c %l", _dir.Path).Split(' ');
        Assert.Equal(ulong.Parse(fields[0], CultureInfo.InvariantCulture), vfs.FragmentSize);
        Assert.Equal(ulong.Parse(fields[1], CultureInfo.InvariantCulture), vfs.BlockSize);
        Assert.Equal(ulong.Parse(fields[2], CultureInfo.InvariantCulture), vfs.Blocks);
        Assert.Equal(ulong.Parse(fields[3], CultureInfo.InvariantCulture), vfs.Files);
        Assert.Equal(ulong.Parse(fields[4], CultureInfo.InvariantCulture), vfs.NameMax);
        Assert.InRange(vfs.BlocksAvailable, 0UL, vfs.BlocksFree);
        Assert.Equal(Sys.ENOENT, Sys.StatVfs(P("missing"), out _));
    }

    [Fact]
    public void FlockConflictsBetweenOpenFilesAndProcesses()
    {
        var file = MakeFile("f");
        var fd1 = OpenOk(file, Sys.O_RDONLY);
        var fd2 = OpenOk(file, Sys.O_RDONLY);
        Assert.Equal(0, Sys.Flock(fd1, Sys.LOCK_EX));
        Assert.Equal(Sys.EAGAIN, Sys.Flock(fd2, Sys.LOCK_SH | Sys.LOCK_NB));
        Assert.Equal(1, RunExitCode("flock", "-n", file, "true"));
        Assert.Equal(0, Sys.Flock(fd1, Sys.LOCK_UN));
        Assert.Equal(0, Sys.Flock(fd2, Sys.LOCK_SH | Sys.LOCK_NB));
        Assert.Equal(0, RunExitCode("flock", "-n", "-s", file, "true"));
        Assert.Equal(0, Sys.Close(fd1));
        Assert.Equal(0, Sys.Close(fd2));
        Assert.Equal(Sys.EBADF, Sys.Flock(Closed, Sys.LOCK_UN));
    }

    [Fact]
    public void FcntlRecordLocks()
    {
        Assert.Equal(32, Marshal.SizeOf<FileLock>());
        Assert.Equal(24, (int)Marshal.OffsetOf<FileLock>(nameof(FileLock.Pid)));

        var file = MakeFile("f", new string('x', 1000));
        var fd1 = OpenOk(file, Sys.O_RDWR);
        var fd2 = OpenOk(file, Sys.O_RDWR);
        var mine = FileLock.Range(Sys.F_WRLCK, 100, 50);
        Assert.Equal(0, Sys.FcntlLock(fd1, Sys.F_SETLK, ref mine));

        // A process never conflicts with its own POSIX locks...
        var query = FileLock.Range(Sys.F_WRLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(fd2, Sys.F_GETLK, ref query));
        Assert.Equal(Sys.F_UNLCK, query.Type);

        // ...but an open-file-description lock does, and F_OFD_GETLK describes the holder.
        query = FileLock.Range(Sys.F_RDLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(fd2, Sys.F_OFD_GETLK, ref query));
        Assert.Equal((Sys.F_WRLCK, 100L, 50L, Environment.ProcessId), (query.Type, query.Start, query.Length, query.Pid));
        var theirs = FileLock.Range(Sys.F_RDLCK, 120, 10);
        Assert.Equal(Sys.EAGAIN, Sys.FcntlLock(fd2, Sys.F_OFD_SETLK, ref theirs));
        var outside = FileLock.Range(Sys.F_WRLCK, 150, 10);
        Assert.Equal(0, Sys.FcntlLock(fd2, Sys.F_OFD_SETLKW, ref outside));

        var release = FileLock.Range(Sys.F_UNLCK, 0, 0);
        Assert.Equal(0, Sys.FcntlLock(fd1, Sys.F_SETLKW, ref release));
        Assert.Equal(0, Sys.FcntlLock(fd2, Sys.F_OFD_SETLK, ref theirs));
        Assert.Equal(0, Sys.Close(fd1));
        Assert.Equal(0, Sys.Close(fd2));
        Assert.Equal(Sys.EBADF, Sys.FcntlLock(Closed, Sys.F_GETLK, ref query));
    }

    [Fact]
    public void ReadDirectoryReturnsDotsTypesInodesAndRawNames()
    {
        byte[] odd = [(byte)'n', 0xff, 0xfe];
        Assert.Equal(0, Sys.Mknod(PosixPath.Combine(_dir.Path, odd), Sys.S_IFREG | Rw_r__r__, 0));
        Directory.CreateDirectory(P("d"));
        Assert.Equal(0, Sys.Symlink("d", P("l")));

        Assert.Equal(0, Sys.ReadDirectory(_dir.Path, out var entries));
        Assert.Equal([".", "..", "d", "l", "n\\xff\\xfe"], entries.Select(e => e.ToString()).Order(StringComparer.Ordinal));
        Assert.Equal(2, entries.Count(e => e.IsDotOrDotDot));
        var byName = entries.Where(e => !e.IsDotOrDotDot).ToDictionary(e => e.ToString());
        Assert.Equal(odd, byName["n\\xff\\xfe"].Name);
        Assert.Equal(Sys.DT_REG, byName["n\\xff\\xfe"].Type);
        Assert.Equal(Sys.DT_DIR, byName["d"].Type);
        Assert.Equal(Sys.DT_LNK, byName["l"].Type);
        Assert.Equal(0, Sys.LStat(P("d"), out var d));
        Assert.Equal(d.Ino, byName["d"].Ino);

        Assert.Equal(Sys.ENOENT, Sys.ReadDirectory(P("missing"), out var none));
        Assert.Empty(none);
        Assert.Equal(Sys.ENOTDIR, Sys.ReadDirectory(PosixPath.Combine(_dir.Path, odd), out _));
    }

    [Fact]
    public void AccessAndKill()
    {
        var file = MakeFile("f");
        Assert.Equal(0, Sys.Access(file, Sys.F_OK));
        Assert.Equal(0, Sys.Access(file, Sys.R_OK | Sys.W_OK));
        Assert.Equal(Sys.ENOENT, Sys.Access(P("missing"), Sys.F_OK));

        Assert.Equal(0, Sys.Kill(Environment.ProcessId, 0));
        using var exited = Process.Start("true")!;
        exited.WaitForExit();
        var pid = exited.Id;
        Assert.Equal(Sys.ESRCH, Sys.Kill(pid, 0));
    }

    [Fact]
    public void PathsAreBytes()
    {
        Assert.Throws<ArgumentException>(() => new PosixPath("a\0b"u8));
        Assert.Equal("a/b", PosixPath.Combine("a", "b"u8).ToString());
        Assert.Equal("\\xffok\\x5c\U0001F600", PosixPath.Escape([0xff, (byte)'o', (byte)'k', (byte)'\\', .. "\U0001F600"u8]));
        Assert.Equal(PosixPath.FromString("\u00fc"), PosixPath.FromBytes([0xc3, 0xbc]));
        Assert.NotEqual(PosixPath.FromString("\u00fc"), PosixPath.FromString("u\u0308"));
        Assert.Equal("ENOENT", Sys.ErrnoName(Sys.ENOENT));
        Assert.Equal("OK", Sys.ErrnoName(0));
        Assert.Equal("errno 4242", Sys.ErrnoName(4242));
    }

    [Fact]
    public void TempDirectoryDeletesOddNamesAndReadOnlyDirectories()
    {
        var temp = TempDirectory.CreateWithXattrsAndLinks("posix-temp");
        var inner = PosixPath.Combine(temp.Path, [0xff]);
        Assert.Equal(0, Sys.Mkdir(inner, 0b111_111_111));
        Assert.Equal(0, Sys.Mknod(PosixPath.Combine(inner, "f"u8), Sys.S_IFREG | Rw_r__r__, 0));
        Assert.Equal(0, Sys.Chmod(inner, 0b101_101_101));
        temp.Dispose();
        Assert.False(Directory.Exists(temp.Path));
    }

    private static int RunExitCode(string program, params string[] args)
    {
        using var process = Process.Start(program, args);
        process.WaitForExit();
        return process.ExitCode;
    }

    [LibraryImport("libc")]
    private static partial ulong gnu_dev_makedev(uint major, uint minor);
}
