using System.Diagnostics;
using System.Runtime.Versioning;
using TruckeeFs.Fuse;

namespace TruckeeFs.Tests.Fuse;

/// <summary>Real mounts of <see cref="MemoryFileSystem"/>, driven by real system calls.</summary>
[SupportedOSPlatform("linux")]
public sealed class SessionTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);
    private static readonly string[] ExpectedListing =
        ["big.bin", "boom.txt", "hello.txt", "sleepy-0.txt", "sleepy-1.txt", "sleepy-2.txt", "sleepy-3.txt", "slow.txt"];

    [Fact]
    public void Reads_stats_and_lists_files_with_readdirplus()
    {
        using var mount = new TestMount(readdirPlus: true);

        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));
        var info = new FileInfo(mount["hello.txt"]);
        Assert.Equal(MemoryFileSystem.HelloContent.Length, info.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(mount["hello.txt"]));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddMilliseconds(123).UtcDateTime, info.LastWriteTimeUtc);
        Assert.Equal(0, Libc.Stat(mount["hello.txt"], out var stat));
        Assert.Equal(mount.FileSystem.InodeOf("hello.txt"), stat.Inode);

        Assert.Equal(ExpectedListing, Directory.GetFiles(mount.Path).Select(Path.GetFileName).Order());
        // readdirplus_auto: the kernel asks for plus on a listing's first call.
        Assert.True(mount.FileSystem.ReadDirPlusCalls > 0);
        Assert.Equal(7u, mount.FileSystem.ProtocolMajor);
        Assert.True(mount.FileSystem.Capable.HasFlag(FuseCapabilities.ReaddirPlus));
        Assert.True(mount.FileSystem.Want.HasFlag(FuseCapabilities.ReaddirPlus));
        Assert.Equal(0, mount.FileSystem.WrongHandles);
    }

    [Fact]
    public void Lists_files_with_plain_readdir_when_readdirplus_is_not_wanted()
    {
        using var mount = new TestMount(readdirPlus: false);

        Assert.Equal(ExpectedListing, Directory.GetFiles(mount.Path).Select(Path.GetFileName).Order());
        Assert.True(mount.FileSystem.ReadDirCalls > 0);
        Assert.Equal(0, mount.FileSystem.ReadDirPlusCalls);
        Assert.False(mount.FileSystem.Want.HasFlag(FuseCapabilities.ReaddirPlus));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Lists_a_directory_larger_than_one_reply(bool readdirPlus)
    {
        using var mount = new TestMount(readdirPlus);
        // Plain entries take 64 bytes here and the kernel asks for up to 32 KiB per call.
        var names = Enumerable.Range(0, 1000).Select(i => $"a-rather-long-file-name-number-{i:D4}.txt").ToList();
        names.ForEach(name => File.Create(mount[name]).Dispose());

        var listed = Directory.GetFiles(mount.Path).Select(Path.GetFileName).ToList();

        Assert.Equal(names.Concat(ExpectedListing).Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.True(mount.FileSystem.FullReplies > 0, $"largest readdir size {mount.FileSystem.LargestReadDirSize}");
    }

    [Fact]
    public void Reads_come_as_large_as_the_readahead_the_filesystem_asked_for()
    {
        // Above the 128 KiB the kernel allows a FUSE mount's readahead by default.
        const uint RequestSize = 512 << 10;
        using var mount = new TestMount(new MemoryFileSystem(readdirPlus: true) { RequestSize = RequestSize });

        Assert.Equal(MemoryFileSystem.BigSize, File.ReadAllBytes(mount["big.bin"]).Length);

        Assert.Equal(RequestSize, mount.FileSystem.LargestRead);
        var device = MountTable.DeviceAt(mount.Path);
        Assert.Equal($"{RequestSize / 1024}", File.ReadAllText($"/sys/class/bdi/{device}/read_ahead_kb").Trim());
    }

    [Fact]
    public void A_missing_file_is_ENOENT()
    {
        using var mount = new TestMount();

        Assert.Throws<FileNotFoundException>(() => File.ReadAllBytes(mount["missing.txt"]));
        Assert.Equal(-Errno.ENOENT, Libc.Stat(mount["missing.txt"], out _));
    }

    [Fact]
    public void Creates_writes_truncates_and_unlinks()
    {
        using var mount = new TestMount();
        var data = new byte[300_000];
        new Random(42).NextBytes(data);

        File.WriteAllBytes(mount["new.bin"], data);
        Assert.Equal(data, File.ReadAllBytes(mount["new.bin"]));
        Assert.Equal(data, mount.FileSystem.ContentOf("new.bin"));

        File.WriteAllBytes(mount["new.bin"], "short"u8.ToArray());
        Assert.Equal("short"u8.ToArray(), File.ReadAllBytes(mount["new.bin"]));

        File.Delete(mount["new.bin"]);
        Assert.False(File.Exists(mount["new.bin"]));
        Assert.Equal(0, mount.FileSystem.WrongHandles);
    }

    [Fact]
    public void Extended_attributes_round_trip()
    {
        using var mount = new TestMount();
        var file = mount["hello.txt"];
        var value = "blue \0 and green"u8;

        Assert.Equal(0, Libc.SetXattr(file, "user.color", value));
        Assert.Equal(value.Length, Libc.GetXattr(file, "user.color", []));
        var buffer = new byte[64];
        Assert.Equal(value.Length, Libc.GetXattr(file, "user.color", buffer));
        Assert.Equal(value.ToArray(), buffer[..value.Length]);

        Assert.Equal(-Errno.ERANGE, Libc.GetXattr(file, "user.color", new byte[2]));
        Assert.Equal(-Errno.ENODATA, Libc.GetXattr(file, "user.missing", buffer));
        Assert.Equal(-Errno.EEXIST, Libc.SetXattr(file, "user.color", "red"u8, Libc.XattrCreate));
    }

    [Fact]
    public void Statfs_reaches_the_caller()
    {
        using var mount = new TestMount();

        Assert.Equal(0, Libc.StatVfs(mount.Path, out var stat));
        Assert.Equal(4096ul, stat.BlockSize);
        Assert.Equal(1000ul, stat.Blocks);
        Assert.Equal(500ul, stat.BlocksFree);
        Assert.Equal(400ul, stat.BlocksAvailable);
        Assert.Equal(100ul, stat.Files);
        Assert.Equal(50ul, stat.FilesFree);
        Assert.Equal(255ul, stat.NameMax);
    }

    [Fact]
    public void A_reply_sent_later_from_another_thread_is_delivered()
    {
        using var mount = new TestMount();
        var clock = Stopwatch.StartNew();

        Assert.Equal(MemoryFileSystem.SlowContent, File.ReadAllBytes(mount["slow.txt"]));
        Assert.True(clock.ElapsedMilliseconds >= 150, $"answered after {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void An_exception_in_a_callback_is_EIO_and_logged()
    {
        using var mount = new TestMount();

        var error = Assert.Throws<IOException>(() => File.ReadAllBytes(mount["boom.txt"]));
        Assert.Equal(Errno.EIO, error.HResult & 0xFFFF);
        Assert.Contains(mount.Log, line => line.Contains("Open failed", StringComparison.Ordinal) && line.Contains("boom", StringComparison.Ordinal));
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));
    }

    [Fact]
    public void Serves_requests_on_several_threads_at_once()
    {
        using var mount = new TestMount();

        var elapsed = ReadSleepyFilesConcurrently(mount);

        Assert.True(elapsed < TimeSpan.FromMilliseconds(1000), $"4 reads of 300 ms took {elapsed.TotalMilliseconds} ms");
        Assert.True(mount.FileSystem.SleepingThreads.Count > 1);
    }

    [Fact]
    public void Run_honours_the_thread_limit()
    {
        // Shows the loop config reaches libfuse: the 3.12 loop reads it, an older variant would not.
        using var mount = new TestMount(maxThreads: 1);

        var elapsed = ReadSleepyFilesConcurrently(mount);

        Assert.True(elapsed >= TimeSpan.FromMilliseconds(1150), $"4 reads of 300 ms on one thread took {elapsed.TotalMilliseconds} ms");
        Assert.Single(mount.FileSystem.SleepingThreads);
    }

    [Fact]
    public async Task Exit_from_another_thread_ends_Run_promptly_and_unmounts()
    {
        using var mount = new TestMount();
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));
        Assert.True(TestMount.IsMounted(mount.Path));

        var exit = Task.Run(mount.Session.Exit);

        Assert.True(mount.LoopEnds(Prompt), "Run did not return after Exit");
        await exit;
        Assert.Equal(0, await mount.Loop);
        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.False(mount.Session.IsMounted);
        Assert.Null(mount.Session.Mountpoint);
        Assert.Empty(mount.Log);
    }

    [Fact]
    public void Exit_ends_Run_promptly_even_while_a_file_is_open()
    {
        using var mount = new TestMount();
        var open = File.OpenRead(mount["hello.txt"]);
        try
        {
            _ = Task.Run(mount.Session.Exit);

            Assert.True(mount.LoopEnds(Prompt), "Run did not return after Exit");
            Assert.False(TestMount.IsMounted(mount.Path));
            Assert.Throws<IOException>(() => open.ReadByte());
            Assert.Empty(mount.Log);
        }
        finally
        {
            try
            {
                open.Dispose();
            }
            catch (IOException)
            {
                // The connection is gone: closing reports it.
            }
        }
    }

    [Fact]
    public void Unmount_while_running_ends_Run()
    {
        using var mount = new TestMount();
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));

        mount.Session.Unmount();

        Assert.False(mount.Session.IsMounted);
        Assert.True(mount.LoopEnds(Prompt), "Run did not return after Unmount");
        Assert.False(TestMount.IsMounted(mount.Path));
    }

    [Fact]
    public async Task An_outside_fusermount_unmount_ends_Run()
    {
        using var mount = new TestMount();
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));

        Assert.Equal(0, TestMount.Fusermount("-u", mount.Path));

        Assert.True(mount.LoopEnds(Prompt), "Run did not return after fusermount3 -u");
        Assert.Equal(0, await mount.Loop);
        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.False(mount.Session.IsMounted);
    }

    [Fact]
    public async Task An_exception_in_Init_ends_Run_with_EIO()
    {
        using var mount = new TestMount(new FailingInit());

        Assert.True(mount.LoopEnds(Prompt), "Run did not return after Init threw");
        Assert.Equal(-Errno.EIO, await mount.Loop);
        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.Contains(mount.Log, line => line.Contains("Init failed", StringComparison.Ordinal));
    }

    [Fact]
    public void Unmount_before_Run_releases_the_mount()
    {
        var directory = Directory.CreateTempSubdirectory("fusetest-");
        try
        {
            using var session = new FuseSession(new MemoryFileSystem(readdirPlus: true), TestMount.Options);
            session.Mount(directory.FullName);
            Assert.True(session.IsMounted);
            Assert.Equal(directory.FullName, session.Mountpoint);
            Assert.True(TestMount.IsMounted(directory.FullName));

            session.Unmount();

            Assert.False(session.IsMounted);
            Assert.False(TestMount.IsMounted(directory.FullName));
            Assert.Throws<InvalidOperationException>(() => session.Run());
        }
        finally
        {
            if (TestMount.IsMounted(directory.FullName))
            {
                TestMount.Fusermount("-u", "-z", directory.FullName);
            }

            directory.Delete();
        }
    }

    [Fact]
    public void Options_reach_the_mount_with_commas_quoted()
    {
        var directory = Directory.CreateTempSubdirectory("fusetest-");
        try
        {
            using var session = new FuseSession(new MemoryFileSystem(readdirPlus: true), ["fsname=fuse,test", "subtype=memfs", "default_permissions"]);
            session.Mount(directory.FullName);

            var fields = TestMount.MountInfo(directory.FullName)!;
            var separator = Array.IndexOf(fields, "-");
            Assert.Equal("fuse.memfs", fields[separator + 1]);
            Assert.Equal("fuse,test", fields[separator + 2]);
            Assert.Contains("default_permissions", fields[separator + 3].Split(','));
        }
        finally
        {
            if (TestMount.IsMounted(directory.FullName))
            {
                TestMount.Fusermount("-u", "-z", directory.FullName);
            }

            directory.Delete();
        }
    }

    [Fact]
    public void Dispose_before_Run_unmounts()
    {
        var directory = Directory.CreateTempSubdirectory("fusetest-");
        try
        {
            var session = new FuseSession(new MemoryFileSystem(readdirPlus: true), TestMount.Options);
            session.Mount(directory.FullName);

            session.Dispose();

            Assert.False(session.IsMounted);
            Assert.False(TestMount.IsMounted(directory.FullName));
            Assert.Throws<ObjectDisposedException>(() => session.Run());
        }
        finally
        {
            if (TestMount.IsMounted(directory.FullName))
            {
                TestMount.Fusermount("-u", "-z", directory.FullName);
            }

            directory.Delete();
        }
    }

    [Fact]
    public void Dispose_calls_Destroy_after_the_kernel_initialized_the_session()
    {
        var mount = new TestMount();
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));

        mount.Dispose();

        Assert.True(mount.FileSystem.Destroyed);
        Assert.False(TestMount.IsMounted(mount.Path));
    }

    [Fact]
    public void Notifications_reach_the_kernel_and_report_errors()
    {
        using var mount = new TestMount();
        var inode = mount.FileSystem.InodeOf("hello.txt");
        Assert.Equal(MemoryFileSystem.HelloContent.Length, new FileInfo(mount["hello.txt"]).Length);

        Assert.Equal(0, mount.Session.NotifyInvalidateInode(inode, 0, 0));
        Assert.Equal(0, mount.Session.NotifyInvalidateEntry(MemoryFileSystem.RootInode, "hello.txt"u8));
        Assert.Equal(-Errno.ENOENT, mount.Session.NotifyInvalidateEntry(MemoryFileSystem.RootInode, "never-looked-up"u8));
        Assert.Equal(-Errno.ENOENT, mount.Session.NotifyInvalidateInode(999_999, 0, 0));
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));
        Assert.Equal(0, mount.Session.NotifyDelete(MemoryFileSystem.RootInode, inode, "hello.txt"u8));
        Assert.Equal(-Errno.ENOENT, mount.Session.NotifyDelete(MemoryFileSystem.RootInode, inode, "hello.txt"u8));
        Assert.Equal(MemoryFileSystem.HelloContent, File.ReadAllBytes(mount["hello.txt"]));

        mount.Session.Exit();
        Assert.True(mount.LoopEnds(Prompt));
        Assert.True(mount.Session.NotifyInvalidateInode(inode, 0, 0) < 0);
    }

    [Fact]
    public void Unknown_options_and_missing_mountpoints_throw_FuseException()
    {
        var fs = new MemoryFileSystem(readdirPlus: true);
        Assert.Throws<FuseException>(() => new FuseSession(fs, ["no_such_option_anywhere"]));

        using var session = new FuseSession(fs, TestMount.Options);
        var error = Assert.Throws<FuseException>(() => session.Mount("/nonexistent/fusetest"));
        Assert.Contains("/nonexistent/fusetest", error.Message, StringComparison.Ordinal);
        Assert.False(session.IsMounted);
    }

    // Own threads: the thread pool of a small machine would itself run these one by one. Reads
    // of different files, because libfuse 3.14 never passes PARALLEL_DIROPS to the kernel, which
    // then serializes lookups in one directory.
    private static TimeSpan ReadSleepyFilesConcurrently(TestMount mount)
    {
        var clock = Stopwatch.StartNew();
        var readers = Enumerable.Range(0, MemoryFileSystem.SleepyFiles)
            .Select(i => new Thread(() => File.ReadAllBytes(mount[$"sleepy-{i}.txt"])))
            .ToList();
        readers.ForEach(t => t.Start());
        readers.ForEach(t => t.Join());
        return clock.Elapsed;
    }

    private sealed class FailingInit : FuseOperations
    {
        public override void Init(FuseConnection connection) => throw new InvalidOperationException("cannot start");
    }
}
