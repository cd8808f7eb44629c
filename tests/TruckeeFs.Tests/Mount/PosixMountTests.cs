using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Mount;

/// <summary>POSIX behaviour through a real mount, driven by real system calls; errnos asserted.</summary>
public sealed class PosixMountTests(MountFixture fixture) : IClassFixture<MountFixture>
{
    private const uint Mode644 = 0x1A4;

    [Fact]
    public void Every_file_type_can_be_made_and_reports_its_type()
    {
        var dir = fixture.NewDirectory("types");
        Assert.Equal(0, Sys.Mknod($"{dir}/fifo", Sys.S_IFIFO | 0x180, 0));
        Assert.Equal(0, Sys.Mknod($"{dir}/sock", Sys.S_IFSOCK | 0x180, 0));
        Assert.Equal(0, Sys.Mknod($"{dir}/chr", Sys.S_IFCHR | 0x180, Sys.MakeDev(1, 3)));
        Assert.Equal(0, Sys.Mknod($"{dir}/blk", Sys.S_IFBLK | 0x180, Sys.MakeDev(7, 9)));
        Assert.Equal(0, Sys.Mknod($"{dir}/reg", Sys.S_IFREG | 0x180, 0));
        Assert.Equal(0, Sys.Symlink("target/with/é", $"{dir}/link"));
        Assert.Equal(Sys.EEXIST, Sys.Mknod($"{dir}/fifo", Sys.S_IFIFO | 0x180, 0));

        Assert.Equal(0, Sys.LStat($"{dir}/fifo", out var fifo));
        Assert.Equal(Sys.S_IFIFO, fifo.FileType);
        Assert.Equal(0, Sys.LStat($"{dir}/sock", out var sock));
        Assert.Equal(Sys.S_IFSOCK, sock.FileType);
        Assert.Equal(0, Sys.LStat($"{dir}/chr", out var chr));
        Assert.Equal((Sys.S_IFCHR, 1u, 3u), (chr.FileType, Sys.Major(chr.Rdev), Sys.Minor(chr.Rdev)));
        Assert.Equal(0, Sys.LStat($"{dir}/blk", out var blk));
        Assert.Equal((Sys.S_IFBLK, 7u, 9u), (blk.FileType, Sys.Major(blk.Rdev), Sys.Minor(blk.Rdev)));
        Assert.Equal(0, Sys.LStat($"{dir}/reg", out var reg));
        Assert.Equal(Sys.S_IFREG | 0x180, reg.Mode);
        Assert.Equal(0, Sys.ReadLink($"{dir}/link", out var target));
        Assert.Equal("target/with/é", Encoding.UTF8.GetString(target));
        Assert.Equal(0, Sys.LStat($"{dir}/link", out var link));
        Assert.Equal((Sys.S_IFLNK, (long)Encoding.UTF8.GetByteCount("target/with/é")), (link.FileType, link.Size));
        Assert.Equal(Sys.EINVAL, Sys.ReadLink($"{dir}/reg", out _));
    }

    [Fact]
    public void Hard_links_keep_link_counts_right()
    {
        var dir = fixture.NewDirectory("links");
        File.WriteAllText($"{dir}/a", "shared");
        Assert.Equal(0, Sys.Link($"{dir}/a", $"{dir}/b"));
        Assert.Equal(Sys.EEXIST, Sys.Link($"{dir}/a", $"{dir}/b"));
        Assert.Equal(0, Sys.Stat($"{dir}/a", out var a));
        Assert.Equal(0, Sys.Stat($"{dir}/b", out var b));
        Assert.Equal((2UL, a.Ino), (b.Nlink, b.Ino));
        Assert.Equal(Sys.EPERM, Sys.Link(dir, $"{dir}/dirlink"));
        Assert.Equal(0, Sys.Unlink($"{dir}/a"));
        Assert.Equal(0, Sys.Stat($"{dir}/b", out b));
        Assert.Equal(1UL, b.Nlink);
        Assert.Equal("shared", File.ReadAllText($"{dir}/b"));

        Assert.Equal(0, Sys.Mkdir($"{dir}/sub1", 0x1ED));
        Assert.Equal(0, Sys.Mkdir($"{dir}/sub2", 0x1ED));
        Assert.Equal(0, Sys.Stat(dir, out var parent));
        Assert.Equal(4UL, parent.Nlink);
        Assert.Equal(0, Sys.Rmdir($"{dir}/sub1"));
        Assert.Equal(0, Sys.Stat(dir, out parent));
        Assert.Equal(3UL, parent.Nlink);
    }

    [Fact]
    public void Rename_follows_posix_including_renameat2_flags()
    {
        var dir = fixture.NewDirectory("rename");
        File.WriteAllText($"{dir}/one", "1");
        File.WriteAllText($"{dir}/two", "2");
        Directory.CreateDirectory($"{dir}/d/e");
        Directory.CreateDirectory($"{dir}/empty");

        Assert.Equal(Sys.EEXIST, Sys.RenameAt2($"{dir}/one", $"{dir}/two", Sys.RENAME_NOREPLACE));
        Assert.Equal(0, Sys.RenameAt2($"{dir}/one", $"{dir}/two", Sys.RENAME_EXCHANGE));
        Assert.Equal(("2", "1"), (File.ReadAllText($"{dir}/one"), File.ReadAllText($"{dir}/two")));
        Assert.Equal(Sys.ENOENT, Sys.RenameAt2($"{dir}/one", $"{dir}/none", Sys.RENAME_EXCHANGE));
        Assert.Equal(Sys.EINVAL, Sys.RenameAt2($"{dir}/one", $"{dir}/two", Sys.RENAME_EXCHANGE | Sys.RENAME_NOREPLACE));
        Assert.Equal(Sys.EINVAL, Sys.Rename($"{dir}/d", $"{dir}/d/e/inside"));
        Assert.Equal(Sys.EISDIR, Sys.Rename($"{dir}/one", $"{dir}/empty"));
        Assert.Equal(Sys.ENOTDIR, Sys.Rename($"{dir}/empty", $"{dir}/one"));
        Assert.Equal(Sys.ENOTEMPTY, Sys.Rename($"{dir}/empty", $"{dir}/d"));
        Assert.Equal(0, Sys.Rename($"{dir}/d", $"{dir}/empty"));
        Assert.True(Directory.Exists($"{dir}/empty/e"));
        Assert.Equal(0, Sys.Rename($"{dir}/one", $"{dir}/two"));
        Assert.Equal("2", File.ReadAllText($"{dir}/two"));
        Assert.False(File.Exists($"{dir}/one"));
    }

    [Fact]
    public void A_file_unlinked_while_open_stays_readable_and_writable_until_closed()
    {
        var dir = fixture.NewDirectory("unlinked");
        Assert.Equal(0, Sys.Open($"{dir}/f", Sys.O_RDWR | Sys.O_CREAT, Mode644, out var fd));
        try
        {
            var data = RandomNumberGenerator.GetBytes(200_000);
            Assert.Equal(0, Sys.Write(fd, data, out _));
            Assert.Equal(0, Sys.Unlink($"{dir}/f"));
            Assert.Equal(Sys.ENOENT, Sys.Stat($"{dir}/f", out _));
            Assert.Equal(0, Sys.PWrite(fd, "tail"u8, data.Length, out _));
            Assert.Equal(0, Sys.FStat(fd, out var info));
            Assert.Equal((0UL, data.Length + 4L), (info.Nlink, info.Size));
            var back = new byte[data.Length + 4];
            Assert.Equal(0, Sys.PReadFully(fd, back, 0, out var count));
            Assert.Equal(back.Length, count);
            Assert.Equal(data, back[..data.Length]);
            Assert.Equal("tail"u8.ToArray(), back[data.Length..]);
        }
        finally
        {
            Assert.Equal(0, Sys.Close(fd));
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void Extended_attributes_honour_flags_sizes_and_errors()
    {
        var dir = fixture.NewDirectory("xattr");
        var file = $"{dir}/f";
        File.WriteAllText(file, "x");
        Assert.Equal(Sys.ENODATA, Sys.GetXattr(file, "user.k", out _));
        Assert.Equal(Sys.ENODATA, Sys.SetXattr(file, "user.k", "v"u8, Sys.XATTR_REPLACE));
        Assert.Equal(0, Sys.SetXattr(file, "user.k", "value"u8, Sys.XATTR_CREATE));
        Assert.Equal(Sys.EEXIST, Sys.SetXattr(file, "user.k", "v"u8, Sys.XATTR_CREATE));
        Assert.Equal(0, Sys.GetXattr(file, "user.k", Span<byte>.Empty, out var size));
        Assert.Equal(5, size);
        Assert.Equal(Sys.ERANGE, Sys.GetXattr(file, "user.k", new byte[2], out _));
        Assert.Equal(0, Sys.SetXattr(file, "user.binary", new byte[] { 0, 255, 0 }, 0));
        Assert.Equal(0, Sys.ListXattr(file, out var names));
        Assert.Equal(["user.binary", "user.k"], names.Order());
        Assert.Equal(0, Sys.GetXattr(file, "user.binary", out var binary));
        Assert.Equal(new byte[] { 0, 255, 0 }, binary);
        Assert.Equal(0, Sys.RemoveXattr(file, "user.k"));
        Assert.Equal(Sys.ENODATA, Sys.RemoveXattr(file, "user.k"));
        Assert.Equal(0, Sys.SetXattr(dir, "user.ondir", "d"u8, 0));
        Assert.Equal(0, Sys.GetXattr(dir, "user.ondir", out var onDir));
        Assert.Equal("d"u8.ToArray(), onDir);
    }

    [Fact]
    public void Extended_attribute_names_stop_with_ENOSPC_before_listxattr_would_fail()
    {
        var file = $"{fixture.NewDirectory("xattr-list")}/f";
        File.WriteAllText(file, "x");
        var added = 0;
        int status;
        // Names of 100 bytes: 101 in the list each, so the 64 KiB list holds 648 of them.
        while ((status = Sys.SetXattr(file, $"user.{added:D4}".PadRight(100, 'n'), "v"u8, 0)) == 0 && added < 1000) added++;
        Assert.Equal(Sys.ENOSPC, status);
        Assert.Equal(65536 / 101, added);
        Assert.Equal(0, Sys.ListXattr(file, out var names));
        Assert.Equal(added, names.Length);
    }

    [Fact]
    public async Task A_byte_range_lock_that_would_close_a_cycle_of_waiting_processes_fails_with_EDEADLK()
    {
        // This process holds byte 0 and waits for byte 1; another holds byte 1 and asks for byte 0.
        // Neither could ever go on: as on a local filesystem, the request that closes the cycle
        // fails (EDEADLK), and when its process goes, the wait here ends with the lock.
        var file = $"{fixture.NewDirectory("deadlock")}/f";
        File.WriteAllText(file, "01");
        Assert.Equal(0, Sys.Open(file, Sys.O_RDWR, out var fd));
        var mine = FileLock.Range(Sys.F_WRLCK, 0, 1);
        Assert.Equal(0, Sys.FcntlLock(fd, Sys.F_SETLK, ref mine));
        const string Other = """
            use Fcntl; use Errno;
            sub range { pack("s s x4 q q i x4", F_WRLCK, SEEK_SET, $_[0], 1, 0) }
            open(my $f, "+<", $ARGV[0]) or die "open: $!";
            fcntl($f, F_SETLK, range(1)) or die "lock byte 1: $!";
            $| = 1; print "holding\n";
            <STDIN>;
            print fcntl($f, F_SETLKW, range(0)) ? "granted\n" : $!{EDEADLK} ? "EDEADLK\n" : "errno " . ($! + 0) . "\n";
            """;
        using var other = Process.Start(new ProcessStartInfo("perl", ["-e", Other, file])
            { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false })!;
        try
        {
            Assert.Equal("holding", other.StandardOutput.ReadLine());
            var wanted = FileLock.Range(Sys.F_WRLCK, 1, 1);
            var waiting = new MultiHost.BlockingCall(() => Sys.FcntlLock(fd, Sys.F_SETLKW, ref wanted));
            Assert.False(waiting.Returns(TimeSpan.FromSeconds(1)), "byte 1 is held by the other process");

            other.StandardInput.WriteLine();
            other.StandardInput.Flush();
            // A TimeoutException here: the request closing the cycle waits instead of failing.
            Assert.Equal("EDEADLK", await other.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.True(other.WaitForExit(10_000));
            Assert.True(waiting.Returns(TimeSpan.FromSeconds(10)), "the lock the other process held goes with it");
            Assert.Equal(0, waiting.Result);
        }
        finally
        {
            if (!other.HasExited) other.Kill();
            Assert.Equal(0, Sys.Close(fd));
        }
    }

    [Fact]
    public void A_sparse_file_reports_only_its_written_blocks_as_allocated()
    {
        // du, tar --sparse and cp --sparse tell holes by st_blocks: a file written at its start
        // and a terabyte further on allocates two blocks' worth, not a terabyte.
        var dir = fixture.NewDirectory("sparse");
        Assert.Equal(0, Sys.Open($"{dir}/sparse", Sys.O_RDWR | Sys.O_CREAT, Mode644, out var fd));
        Assert.Equal(0, Sys.PWrite(fd, "head"u8, 0, out _));
        Assert.Equal(0, Sys.PWrite(fd, "tail"u8, 1L << 40, out _));
        // Before the close commits it too (a reply from the changes not committed).
        Assert.Equal(0, Sys.FStat(fd, out var open));
        Assert.Equal((1L << 40) + 4, open.Size);
        Assert.InRange(open.Blocks * 512, 8, 2 * MountFixture.BlockSize);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, Sys.Stat($"{dir}/sparse", out var sparse));
        Assert.Equal((1L << 40) + 4, sparse.Size);
        Assert.InRange(sparse.Blocks * 512, 8, 2 * MountFixture.BlockSize);
        Assert.Equal(open.Blocks, sparse.Blocks);

        // A hole punched in an open file, and a truncation, count before the close as after it.
        Assert.Equal(0, Sys.Open($"{dir}/punched", Sys.O_RDWR | Sys.O_CREAT, Mode644, out fd));
        Assert.Equal(0, Sys.PWrite(fd, new byte[4 * MountFixture.BlockSize], 0, out _));
        Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_PUNCH_HOLE | Sys.FALLOC_FL_KEEP_SIZE, MountFixture.BlockSize, 2 * MountFixture.BlockSize));
        Assert.Equal(0, Sys.FStat(fd, out var punched));
        Assert.Equal(2 * MountFixture.BlockSize, punched.Blocks * 512);
        Assert.Equal(0, Sys.Ftruncate(fd, MountFixture.BlockSize / 2));
        Assert.Equal(0, Sys.FStat(fd, out var cut));
        Assert.Equal(MountFixture.BlockSize / 2, cut.Blocks * 512);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, Sys.Stat($"{dir}/punched", out var closed));
        Assert.Equal(cut.Blocks, closed.Blocks);

        var dense = RandomNumberGenerator.GetBytes((int)(3 * MountFixture.BlockSize + 100));
        File.WriteAllBytes($"{dir}/dense", dense);
        Assert.Equal(0, Sys.Stat($"{dir}/dense", out var written));
        Assert.Equal((dense.Length + 511) / 512, written.Blocks);
        Assert.Equal(0, Sys.Truncate($"{dir}/dense", 0));
        Assert.Equal(0, Sys.Stat($"{dir}/dense", out var emptied));
        Assert.Equal(0, emptied.Blocks);
    }

    [Fact]
    public void Seek_data_and_seek_hole_find_the_blocks_a_sparse_file_has()
    {
        var block = MountFixture.BlockSize;
        var file = $"{fixture.NewDirectory("seek")}/f";
        Assert.Equal(0, Sys.Open(file, Sys.O_RDWR | Sys.O_CREAT, Mode644, out var fd));
        try
        {
            // Data at the start of block 0 and in block 5 (from the block's start: the zeros
            // before the bytes written there count as data), holes between and after, the zeros
            // after each block's bytes included.
            Assert.Equal(0, Sys.PWrite(fd, "head"u8, 0, out _));
            Assert.Equal(0, Sys.PWrite(fd, "middle"u8, 5 * block + 10, out _));
            Assert.Equal(0, Sys.Ftruncate(fd, 9 * block));
            Assert.Equal((0, 0L), Seek(fd, 0, Sys.SEEK_DATA));
            Assert.Equal((0, 3L), Seek(fd, 3, Sys.SEEK_DATA));
            Assert.Equal((0, 5 * block), Seek(fd, 100, Sys.SEEK_DATA));
            Assert.Equal((0, 4L), Seek(fd, 0, Sys.SEEK_HOLE));
            Assert.Equal((0, 100L), Seek(fd, 100, Sys.SEEK_HOLE));
            Assert.Equal((0, 5 * block), Seek(fd, block, Sys.SEEK_DATA));
            Assert.Equal((0, 5 * block + 16), Seek(fd, 5 * block, Sys.SEEK_HOLE));
            Assert.Equal((0, 2 * block), Seek(fd, 2 * block, Sys.SEEK_HOLE));
            Assert.Equal((Sys.ENXIO, -1L), Seek(fd, 5 * block + 16, Sys.SEEK_DATA));
            Assert.Equal((Sys.ENXIO, -1L), Seek(fd, 6 * block, Sys.SEEK_DATA));
            Assert.Equal((Sys.ENXIO, -1L), Seek(fd, 9 * block, Sys.SEEK_HOLE));
            // A dense file's only hole is its end, also once reopened (its block map read from metadata).
            Assert.Equal(0, Sys.Ftruncate(fd, 0));
            Assert.Equal(0, Sys.PWrite(fd, new byte[2 * block + 7], 0, out _));
            Assert.Equal((0, 2 * block + 7), Seek(fd, 0, Sys.SEEK_HOLE));
        }
        finally
        {
            Assert.Equal(0, Sys.Close(fd));
        }
        Assert.Equal(0, Sys.Open(file, Sys.O_RDONLY, out fd));
        Assert.Equal((0, 2 * block + 7), Seek(fd, 1, Sys.SEEK_HOLE));
        Assert.Equal(0, Sys.Close(fd));

        // Committed and opened again: the same from the stored blocks' lengths.
        Assert.Equal(0, Sys.Open(file, Sys.O_WRONLY | Sys.O_TRUNC, out fd));
        Assert.Equal(0, Sys.PWrite(fd, "head"u8, 0, out _));
        Assert.Equal(0, Sys.PWrite(fd, "tail"u8, 3 * block, out _));
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, Sys.Open(file, Sys.O_RDONLY, out fd));
        Assert.Equal((0, 4L), Seek(fd, 0, Sys.SEEK_HOLE));
        Assert.Equal((0, 3 * block), Seek(fd, 4, Sys.SEEK_DATA));
        Assert.Equal((0, 3 * block + 4), Seek(fd, 3 * block, Sys.SEEK_HOLE));
        Assert.Equal(0, Sys.Close(fd));

        static (int Errno, long Offset) Seek(int fd, long offset, int whence) => (Sys.LSeek(fd, offset, whence, out var at), at);
    }

    [Fact]
    public void Truncate_grows_with_zeros_and_shrinks_for_good()
    {
        var dir = fixture.NewDirectory("truncate");
        var file = $"{dir}/f";
        var data = RandomNumberGenerator.GetBytes((int)(3 * MountFixture.BlockSize + 100));
        File.WriteAllBytes(file, data);
        Assert.Equal(0, Sys.Truncate(file, 1000));
        Assert.Equal(0, Sys.Truncate(file, 5 * MountFixture.BlockSize));
        var back = File.ReadAllBytes(file);
        Assert.Equal(5 * MountFixture.BlockSize, back.Length);
        Assert.Equal(data[..1000], back[..1000]);
        Assert.All(back[1000..], b => Assert.Equal(0, b));
        Assert.Equal(Sys.EISDIR, Sys.Truncate(dir, 0));
    }

    [Fact]
    public void Times_follow_posix_and_utimensat_honours_now_and_omit()
    {
        var dir = fixture.NewDirectory("times");
        var file = $"{dir}/f";
        File.WriteAllText(file, "x");
        Assert.Equal(0, Sys.Utimensat(file, new Timespec(1_000_000, 123), new Timespec(2_000_000, 456)));
        Assert.Equal(0, Sys.Stat(file, out var set));
        Assert.Equal((1_000_000_000_000_123L, 2_000_000_000_000_456L), (set.AtimeNs, set.MtimeNs));
        Assert.Equal(0, Sys.Utimensat(file, Timespec.Omit, Timespec.Now));
        Assert.Equal(0, Sys.Stat(file, out var now));
        Assert.Equal(set.AtimeNs, now.AtimeNs);
        Assert.True(now.MtimeNs > set.MtimeNs);
        Assert.True(now.CtimeNs >= now.MtimeNs - 1_000_000_000);

        // Writing moves mtime and ctime; chmod moves ctime only; entries move their directory's times.
        Assert.Equal(0, Sys.Utimensat(file, new Timespec(1, 0), new Timespec(1, 0)));
        Assert.Equal(0, Sys.Stat(file, out var before));
        File.AppendAllText(file, "more");
        Assert.Equal(0, Sys.Stat(file, out var written));
        Assert.True(written.MtimeNs > before.MtimeNs && written.CtimeNs >= before.CtimeNs);
        Thread.Sleep(10);
        Assert.Equal(0, Sys.Chmod(file, 0x180));
        Assert.Equal(0, Sys.Stat(file, out var changed));
        Assert.Equal(written.MtimeNs, changed.MtimeNs);
        Assert.True(changed.CtimeNs > written.CtimeNs);
        Assert.Equal(0, Sys.Stat(dir, out var dirBefore));
        Thread.Sleep(10);
        File.WriteAllText($"{dir}/g", "");
        Assert.Equal(0, Sys.Stat(dir, out var dirAfter));
        Assert.True(dirAfter.MtimeNs > dirBefore.MtimeNs && dirAfter.CtimeNs > dirBefore.CtimeNs);

        // Renames move the ctime of what they move, both sides of an exchange, and an xattr
        // change moves its file's: no cached attributes hide it.
        Assert.Equal(0, Sys.Stat(file, out var beforeRename));
        Assert.Equal(0, Sys.Stat($"{dir}/g", out var otherBefore));
        Thread.Sleep(10);
        Assert.Equal(0, Sys.Rename(file, $"{dir}/moved"));
        Assert.Equal(0, Sys.Stat($"{dir}/moved", out var renamed));
        Assert.True(renamed.CtimeNs > beforeRename.CtimeNs);
        Thread.Sleep(10);
        Assert.Equal(0, Sys.RenameAt2($"{dir}/moved", $"{dir}/g", Sys.RENAME_EXCHANGE));
        Assert.Equal(0, Sys.Stat($"{dir}/g", out var exchanged));
        Assert.Equal(0, Sys.Stat($"{dir}/moved", out var otherExchanged));
        Assert.True(exchanged.CtimeNs > renamed.CtimeNs && otherExchanged.CtimeNs > otherBefore.CtimeNs);
        Thread.Sleep(10);
        Assert.Equal(0, Sys.SetXattr($"{dir}/g", "user.t", "v"u8, 0));
        Assert.Equal(0, Sys.Stat($"{dir}/g", out var xattrChanged));
        Assert.True(xattrChanged.CtimeNs > exchanged.CtimeNs);
    }

    [Fact]
    public void Attributes_set_while_a_file_is_written_show_at_once_and_stay_after_more_writes()
    {
        var dir = fixture.NewDirectory("attributes-open");
        var file = $"{dir}/f";
        Assert.Equal(0, Sys.Open(file, Sys.O_RDWR | Sys.O_CREAT | Sys.O_EXCL, 0x180, out var fd));
        Assert.Equal(0, Sys.Write(fd, new byte[3000], out _));
        Assert.Equal(0, Sys.Utimensat(file, Timespec.Omit, new Timespec(2_000_000, 6)));
        Assert.Equal(0, Sys.Chown(file, 1000, 1001));
        Assert.Equal(0, Sys.Chmod(file, 0x1A4));
        Assert.Equal(0, Sys.FStat(fd, out var open));
        Assert.Equal((0x1A4u, 1000u, 1001u, 2_000_000_000_000_006L, 3000L), (open.Permissions, open.Uid, open.Gid, open.MtimeNs, open.Size));
        // A later write moves the mtime again; mode and owner stay.
        Assert.Equal(0, Sys.PWrite(fd, new byte[10], 3000, out _));
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, Sys.Stat(file, out var closed));
        Assert.Equal((0x1A4u, 1000u, 1001u, 3010L), (closed.Permissions, closed.Uid, closed.Gid, closed.Size));
        Assert.True(closed.MtimeNs > open.MtimeNs);
    }

    [Fact]
    public void Fallocate_allocates_punches_and_zeroes()
    {
        var dir = fixture.NewDirectory("fallocate");
        var data = RandomNumberGenerator.GetBytes((int)(4 * MountFixture.BlockSize));
        File.WriteAllBytes($"{dir}/f", data);
        Assert.Equal(0, Sys.Open($"{dir}/f", Sys.O_RDWR, out var fd));
        try
        {
            Assert.Equal(0, Sys.Fallocate(fd, 0, 0, 8 * MountFixture.BlockSize));
            Assert.Equal(0, Sys.FStat(fd, out var grown));
            Assert.Equal(8 * MountFixture.BlockSize, grown.Size);
            Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_KEEP_SIZE, 0, 16 * MountFixture.BlockSize));
            Assert.Equal(0, Sys.FStat(fd, out var kept));
            Assert.Equal(8 * MountFixture.BlockSize, kept.Size);
            // A hole across one whole block and parts of its neighbours.
            Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_PUNCH_HOLE | Sys.FALLOC_FL_KEEP_SIZE, MountFixture.BlockSize - 10, MountFixture.BlockSize + 20));
            Assert.Equal(0, Sys.Fallocate(fd, Sys.FALLOC_FL_ZERO_RANGE, 3 * MountFixture.BlockSize, 7));
            Assert.Equal(Sys.EOPNOTSUPP, Sys.Fallocate(fd, 0x08 /* COLLAPSE_RANGE */, 0, MountFixture.BlockSize));
        }
        finally
        {
            Assert.Equal(0, Sys.Close(fd));
        }
        var expected = new byte[8 * MountFixture.BlockSize];
        data.CopyTo(expected, 0);
        Array.Clear(expected, (int)MountFixture.BlockSize - 10, (int)MountFixture.BlockSize + 20);
        Array.Clear(expected, (int)(3 * MountFixture.BlockSize), 7);
        Assert.Equal(expected, File.ReadAllBytes($"{dir}/f"));
    }

    [Fact]
    public void Copy_file_range_shares_whole_blocks_instead_of_storing_them_again()
    {
        var dir = fixture.NewDirectory("cfr");
        var data = RandomNumberGenerator.GetBytes((int)(16 * MountFixture.BlockSize + 123));
        WriteDurably($"{dir}/source", data);
        var before = fixture.ContentObjects();
        Assert.Equal(0, Sys.Open($"{dir}/source", Sys.O_RDONLY, out var source));
        Assert.Equal(0, Sys.Open($"{dir}/copy", Sys.O_WRONLY | Sys.O_CREAT, Mode644, out var copy));
        try
        {
            Assert.Equal(0, Sys.CopyFileRange(source, 0, copy, 0, data.Length, out var copied));
            Assert.Equal(data.Length, copied);
        }
        finally
        {
            Sys.Close(source);
            Sys.Close(copy);
        }
        Assert.Equal(data, File.ReadAllBytes($"{dir}/copy"));
        // Sixteen whole blocks were shared; the 123-byte tail was copied, and equals the source's
        // tail block, which the store holds under the same cap (small objects are named by
        // their bytes): nothing new was stored.
        Assert.Empty(fixture.ContentObjects().Except(before));
    }

    [Fact]
    public void A_small_overwrite_of_a_large_file_stores_only_the_touched_block()
    {
        var dir = fixture.NewDirectory("overwrite");
        var data = RandomNumberGenerator.GetBytes((int)(64 * MountFixture.BlockSize));
        WriteDurably($"{dir}/big", data);
        var before = fixture.ContentObjects();
        using (var stream = new FileStream($"{dir}/big", FileMode.Open, FileAccess.Write))
        {
            stream.Position = 32 * MountFixture.BlockSize + 7;
            stream.WriteByte((byte)(data[32 * MountFixture.BlockSize + 7] ^ 0xFF));
            // Uploads run after close; fsync waits for them.
            stream.Flush(flushToDisk: true);
        }
        var after = fixture.ContentObjects();
        Assert.Single(after.Except(before));
        data[32 * MountFixture.BlockSize + 7] ^= 0xFF;
        Assert.Equal(data, File.ReadAllBytes($"{dir}/big"));
    }

    [Fact]
    public void Open_flags_append_excl_and_trunc_behave()
    {
        var dir = fixture.NewDirectory("flags");
        var file = $"{dir}/f";
        Assert.Equal(0, Sys.Open(file, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, Mode644, out var fd));
        Assert.Equal(0, Sys.Write(fd, "abc"u8, out _));
        Sys.Close(fd);
        Assert.Equal(Sys.EEXIST, Sys.Open(file, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, Mode644, out _));
        Assert.Equal(0, Sys.Open(file, Sys.O_WRONLY | Sys.O_APPEND, out fd));
        Assert.Equal(0, Sys.PWrite(fd, "def"u8, 0, out _)); // Linux appends even with an offset.
        Sys.Close(fd);
        Assert.Equal("abcdef", File.ReadAllText(file));
        Assert.Equal(0, Sys.Open(file, Sys.O_RDONLY | Sys.O_TRUNC, out fd));
        Sys.Close(fd);
        Assert.Equal(0, Sys.Stat(file, out var info));
        Assert.Equal(0, info.Size);
        Assert.Equal(Sys.ENOENT, Sys.Open($"{dir}/missing", Sys.O_RDONLY, out _));
    }

    [Fact]
    public void Names_are_bytes_up_to_255_and_case_matters()
    {
        var dir = fixture.NewDirectory("names");
        Assert.Equal(0, Sys.Open($"{dir}/{new string('n', 255)}", Sys.O_WRONLY | Sys.O_CREAT, Mode644, out var fd));
        Sys.Close(fd);
        Assert.Equal(Sys.ENAMETOOLONG, Sys.Open($"{dir}/{new string('n', 256)}", Sys.O_WRONLY | Sys.O_CREAT, Mode644, out _));
        Assert.Equal(Sys.ENAMETOOLONG, Sys.Mkdir($"{dir}/{new string('d', 256)}", 0x1ED));
        File.WriteAllText($"{dir}/A", "upper");
        File.WriteAllText($"{dir}/a", "lower");
        Assert.Equal(("upper", "lower"), (File.ReadAllText($"{dir}/A"), File.ReadAllText($"{dir}/a")));
        byte[] invalid = [.. Encoding.UTF8.GetBytes(dir + "/"), 0xFF, 0xFE, (byte)'z'];
        Assert.Equal(0, Sys.Open(invalid, Sys.O_WRONLY | Sys.O_CREAT, Mode644, out fd));
        Sys.Close(fd);
        Assert.Equal(0, Sys.ReadDirectory(dir, out var entries));
        Assert.Contains(entries, e => e.Name.AsSpan().SequenceEqual(new byte[] { 0xFF, 0xFE, (byte)'z' }));
        Assert.Equal(6, entries.Count); // ".", "..", the long name, "A", "a" and the invalid one
    }

    [Fact]
    public void Large_directories_list_completely()
    {
        var dir = fixture.NewDirectory("many");
        for (var i = 0; i < 3000; i++) File.WriteAllBytes($"{dir}/entry-{i:D5}", []);
        Assert.Equal(0, Sys.ReadDirectory(dir, out var entries));
        var names = entries.Where(e => !e.IsDotOrDotDot).Select(e => Encoding.UTF8.GetString(e.Name)).ToList();
        Assert.Equal(3000, names.Count);
        Assert.Equal(3000, names.Distinct().Count());
        Assert.Equal(2, entries.Count(e => e.IsDotOrDotDot));
    }

    [Fact]
    public void Statfs_reports_real_numbers()
    {
        Assert.Equal(0, Sys.StatVfs(fixture.Mount.Path, out var info));
        Assert.Equal(255UL, info.NameMax);
        Assert.True(info.Blocks > 0 && info.BlocksFree <= info.Blocks && info.BlocksAvailable <= info.BlocksFree);
        Assert.True(info.Files > info.FilesFree && info.FilesFree > 0);
    }

    [Fact]
    public void Sticky_directories_protect_other_users_files()
    {
        var dir = fixture.NewDirectory("sticky");
        Assert.Equal(0, Sys.Chmod(dir, 0x3FF)); // 1777
        File.WriteAllText($"{dir}/roots", "mine");
        var (denied, error) = MountFixture.RunAsNobody($"rm -f '{dir}/roots'");
        Assert.NotEqual(0, denied);
        Assert.Contains("Operation not permitted", error, StringComparison.Ordinal);
        Assert.True(File.Exists($"{dir}/roots"));
        var (created, _) = MountFixture.RunAsNobody($"echo hi > '{dir}/nobodys' && rm '{dir}/nobodys'");
        Assert.Equal(0, created);
    }

    [Fact]
    public void Set_group_id_directories_pass_on_their_group_and_flag()
    {
        var dir = fixture.NewDirectory("setgid");
        Assert.Equal(0, Sys.Chown(dir, 0, 1234));
        Assert.Equal(0, Sys.Chmod(dir, 0x400 | 0x1FF)); // 2777
        var (status, error) = MountFixture.RunAsNobody($"touch '{dir}/file' && mkdir '{dir}/sub'");
        Assert.True(status == 0, error);
        Assert.Equal(0, Sys.Stat($"{dir}/file", out var file));
        Assert.Equal((65534u, 1234u), (file.Uid, file.Gid));
        Assert.Equal(0, Sys.Stat($"{dir}/sub", out var sub));
        Assert.Equal(1234u, sub.Gid);
        Assert.NotEqual(0u, sub.Mode & 0x400);
    }

    [Fact]
    public void Writing_and_chown_clear_set_user_id_bits()
    {
        var dir = fixture.NewDirectory("suid");
        Assert.Equal(0, Sys.Chmod(dir, 0x1FF));
        var file = $"{dir}/prog";
        File.WriteAllText(file, "#!/bin/sh\n");
        Assert.Equal(0, Sys.Chmod(file, 0x800 | 0x400 | 0x1FF)); // 6777
        var (status, error) = MountFixture.RunAsNobody($"echo more >> '{file}'");
        Assert.True(status == 0, error);
        Assert.Equal(0, Sys.Stat(file, out var written));
        Assert.Equal(0u, written.Mode & (0x800 | 0x400));

        Assert.Equal(0, Sys.Chmod(file, 0x800 | 0x1ED)); // 4755
        Assert.Equal(0, Sys.Chown(file, 65534, 65534));
        Assert.Equal(0, Sys.Stat(file, out var chowned));
        Assert.Equal(0u, chowned.Mode & 0x800);
    }

    [Fact]
    public void Permissions_are_enforced_for_other_users()
    {
        var dir = fixture.NewDirectory("perms");
        File.WriteAllText($"{dir}/private", "secret");
        Assert.Equal(0, Sys.Chmod($"{dir}/private", 0x180)); // 0600
        var (status, error) = MountFixture.RunAsNobody($"cat '{dir}/private'");
        Assert.NotEqual(0, status);
        Assert.Contains("Permission denied", error, StringComparison.Ordinal);
    }

    /// <summary>Writes a file and fsyncs it: its blocks are in the content store when this returns (close alone uploads later).</summary>
    private static void WriteDurably(string path, byte[] data)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.Write(data);
        stream.Flush(flushToDisk: true);
    }
}
