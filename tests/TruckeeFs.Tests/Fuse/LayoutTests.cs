using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using TruckeeFs.Fuse;

namespace TruckeeFs.Tests.Fuse;

/// <summary>
/// The binding passes these structs to libfuse 3.14 and glibc by pointer, without conversion:
/// a wrong size or offset corrupts memory or silently changes behaviour. The expected values are
/// read off the x86-64 headers; the libc round-trips check them against the real ABI.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed unsafe class LayoutTests
{
    [Fact]
    public void Stat_matches_struct_stat()
    {
        Assert.Equal(144, Unsafe.SizeOf<FuseStat>());
        Assert.Equal(8, Offset<FuseStat>(nameof(FuseStat.Inode)));
        Assert.Equal(16, Offset<FuseStat>(nameof(FuseStat.Nlink)));
        Assert.Equal(24, Offset<FuseStat>(nameof(FuseStat.Mode)));
        Assert.Equal(28, Offset<FuseStat>(nameof(FuseStat.Uid)));
        Assert.Equal(32, Offset<FuseStat>(nameof(FuseStat.Gid)));
        Assert.Equal(40, Offset<FuseStat>(nameof(FuseStat.Rdev)));
        Assert.Equal(48, Offset<FuseStat>(nameof(FuseStat.Size)));
        Assert.Equal(56, Offset<FuseStat>(nameof(FuseStat.BlockSize)));
        Assert.Equal(64, Offset<FuseStat>(nameof(FuseStat.Blocks)));
        Assert.Equal(72, Offset<FuseStat>(nameof(FuseStat.AtimeSec)));
        Assert.Equal(80, Offset<FuseStat>(nameof(FuseStat.AtimeNsec)));
        Assert.Equal(88, Offset<FuseStat>(nameof(FuseStat.MtimeSec)));
        Assert.Equal(104, Offset<FuseStat>(nameof(FuseStat.CtimeSec)));
        Assert.Equal(112, Offset<FuseStat>(nameof(FuseStat.CtimeNsec)));
    }

    [Fact]
    public void Stat_reads_what_glibc_stat_writes()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, new byte[1234]);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            var written = new DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1234567);
            File.SetLastWriteTimeUtc(path, written);

            Assert.Equal(0, Libc.Stat(path, out var stat));

            Assert.Equal(1234, stat.Size);
            Assert.Equal(0x8000u | 0b110_100_000u, stat.Mode);
            Assert.Equal(1ul, stat.Nlink);
            Assert.Equal(written, DateTime.UnixEpoch.AddSeconds(stat.MtimeSec).AddTicks(stat.MtimeNsec / 100));
            Assert.True(stat.Inode > 0);
            Assert.True(stat.BlockSize > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EntryParam_matches_struct_fuse_entry_param()
    {
        Assert.Equal(176, Unsafe.SizeOf<FuseEntryParam>());
        Assert.Equal(0, Offset<FuseEntryParam>(nameof(FuseEntryParam.Inode)));
        Assert.Equal(8, Offset<FuseEntryParam>(nameof(FuseEntryParam.Generation)));
        Assert.Equal(16, Offset<FuseEntryParam>(nameof(FuseEntryParam.Attr)));
        Assert.Equal(160, Offset<FuseEntryParam>(nameof(FuseEntryParam.AttrTimeout)));
        Assert.Equal(168, Offset<FuseEntryParam>(nameof(FuseEntryParam.EntryTimeout)));
    }

    [Fact]
    public void FileInfo_matches_struct_fuse_file_info()
    {
        Assert.Equal(40, Unsafe.SizeOf<FuseFileInfo>());

        var info = new FuseFileInfo { Flags = 0x0102_0304, Handle = 0x1122_3344_5566_7788, LockOwner = 0x99AA_BBCC_DDEE_FF00 };
        var bytes = AsBytes(ref info);
        Assert.Equal(0x0102_0304, BitConverter.ToInt32(bytes, 0));
        Assert.Equal(0x1122_3344_5566_7788ul, BitConverter.ToUInt64(bytes, 16));
        Assert.Equal(0x99AA_BBCC_DDEE_FF00ul, BitConverter.ToUInt64(bytes, 24));
        Assert.Equal(0u, BitConverter.ToUInt32(bytes, 4));
    }

    [Theory]
    [InlineData(nameof(FuseFileInfo.DirectIo), 0x2u)]
    [InlineData(nameof(FuseFileInfo.KeepCache), 0x4u)]
    [InlineData(nameof(FuseFileInfo.Flush), 0x8u)]
    [InlineData(nameof(FuseFileInfo.NonSeekable), 0x10u)]
    [InlineData(nameof(FuseFileInfo.FlockRelease), 0x20u)]
    [InlineData(nameof(FuseFileInfo.CacheReaddir), 0x40u)]
    [InlineData(nameof(FuseFileInfo.NoFlush), 0x80u)]
    public void Each_FileInfo_flag_sets_exactly_its_bit(string flag, uint bit)
    {
        var property = typeof(FuseFileInfo).GetProperty(flag)!;
        object boxed = new FuseFileInfo();
        property.SetValue(boxed, true);
        var info = (FuseFileInfo)boxed;

        var bytes = AsBytes(ref info);
        Assert.Equal(bit, BitConverter.ToUInt32(bytes, 4));
        Assert.Equal(new byte[36], bytes.Where((_, i) => i is < 4 or >= 8).ToArray());

        property.SetValue(boxed, false);
        info = (FuseFileInfo)boxed;
        Assert.Equal(0u, BitConverter.ToUInt32(AsBytes(ref info), 4));
    }

    [Fact]
    public void FileInfo_reads_writepage_from_bit_0()
    {
        var bytes = new byte[40];
        bytes[4] = 0x1;
        Assert.True(MemoryMarshal.Read<FuseFileInfo>(bytes).WritePage);
        bytes[4] = 0xFE;
        Assert.False(MemoryMarshal.Read<FuseFileInfo>(bytes).WritePage);
    }

    [Fact]
    public void ConnInfo_matches_struct_fuse_conn_info()
    {
        var info = default(ConnInfo);
        Assert.Equal(128, sizeof(ConnInfo));
        Assert.Equal(0, FieldOffset(&info, &info.ProtoMajor));
        Assert.Equal(8, FieldOffset(&info, &info.MaxWrite));
        Assert.Equal(16, FieldOffset(&info, &info.MaxReadahead));
        Assert.Equal(20, FieldOffset(&info, &info.Capable));
        Assert.Equal(24, FieldOffset(&info, &info.Want));
        Assert.Equal(28, FieldOffset(&info, &info.MaxBackground));
        Assert.Equal(32, FieldOffset(&info, &info.CongestionThreshold));
        Assert.Equal(36, FieldOffset(&info, &info.TimeGran));
    }

    [Fact]
    public void Connection_reads_and_writes_the_native_fields()
    {
        var info = new ConnInfo { ProtoMajor = 7, ProtoMinor = 45, Capable = (uint)(FuseCapabilities.ReaddirPlus | FuseCapabilities.ExpireOnly) };
        var connection = new FuseConnection(&info);

        connection.Want = FuseCapabilities.ReaddirPlus;
        connection.MaxWrite = 1 << 20;
        connection.TimeGranularity = 1000;

        Assert.Equal(7u, connection.ProtocolMajor);
        Assert.Equal(45u, connection.ProtocolMinor);
        Assert.True(connection.Capable.HasFlag(FuseCapabilities.ExpireOnly));
        Assert.Equal(1u << 13, info.Want);
        Assert.Equal(1u << 20, info.MaxWrite);
        Assert.Equal(1000u, info.TimeGran);

        connection.Invalidate();
        Assert.Throws<ObjectDisposedException>(() => connection.Want);
    }

    [Fact]
    public void LowLevelOps_matches_struct_fuse_lowlevel_ops()
    {
        var ops = default(LowLevelOps);
        Assert.Equal(352, sizeof(LowLevelOps));
        Assert.Equal(0 * 8, FieldOffset(&ops, &ops.Init));
        Assert.Equal(2 * 8, FieldOffset(&ops, &ops.Lookup));
        Assert.Equal(5 * 8, FieldOffset(&ops, &ops.SetAttr));
        Assert.Equal(16 * 8, FieldOffset(&ops, &ops.Write));
        Assert.Equal(21 * 8, FieldOffset(&ops, &ops.ReadDir));
        Assert.Equal(30 * 8, FieldOffset(&ops, &ops.Create));
        Assert.Equal(32 * 8, FieldOffset(&ops, &ops.SetLk));
        Assert.Equal(38 * 8, FieldOffset(&ops, &ops.ForgetMulti));
        Assert.Equal(41 * 8, FieldOffset(&ops, &ops.ReadDirPlus));
        Assert.Equal(43 * 8, FieldOffset(&ops, &ops.Lseek));
    }

    [Fact]
    public void StatVfs_matches_struct_statvfs()
    {
        Assert.Equal(112, Unsafe.SizeOf<FuseStatVfs>());
        Assert.Equal(16, Offset<FuseStatVfs>(nameof(FuseStatVfs.Blocks)));
        Assert.Equal(64, Offset<FuseStatVfs>(nameof(FuseStatVfs.FsId)));
        Assert.Equal(80, Offset<FuseStatVfs>(nameof(FuseStatVfs.NameMax)));

        Assert.Equal(0, Libc.StatVfs(Path.GetTempPath(), out var stat));
        Assert.True(stat.BlockSize > 0);
        Assert.True(stat.Blocks > 0);
        Assert.True(stat.NameMax is > 0 and <= 4096);
    }

    [Fact]
    public void Small_structs_match_their_native_layouts()
    {
        Assert.Equal(16, Unsafe.SizeOf<FuseForgetData>());
        var forget = new FuseForgetData(3, 4);
        Assert.Equal([3ul, 4ul], MemoryMarshal.Cast<FuseForgetData, ulong>(new ReadOnlySpan<FuseForgetData>(in forget)).ToArray());

        Assert.Equal(32, Unsafe.SizeOf<FuseLock>());
        Assert.Equal(2, Offset<FuseLock>(nameof(FuseLock.Whence)));
        Assert.Equal(8, Offset<FuseLock>(nameof(FuseLock.Start)));
        Assert.Equal(16, Offset<FuseLock>(nameof(FuseLock.Length)));
        Assert.Equal(24, Offset<FuseLock>(nameof(FuseLock.Pid)));

        Assert.Equal(16, Unsafe.SizeOf<FuseContext>());
        var context = MemoryMarshal.Read<FuseContext>(MemoryMarshal.AsBytes<uint>([1, 2, 3, 4]));
        Assert.Equal((1u, 2u, 3, 4u), (context.Uid, context.Gid, context.Pid, context.Umask));

        var args = default(FuseArgs);
        Assert.Equal(24, sizeof(FuseArgs));
        Assert.Equal(8, FieldOffset(&args, &args.Argv));
        Assert.Equal(16, FieldOffset(&args, &args.Allocated));
    }

    [Fact]
    public void Flag_values_match_the_headers()
    {
        Assert.Equal(1u << 16, (uint)FuseCapabilities.WritebackCache);
        Assert.Equal(1u << 26, (uint)FuseCapabilities.ExpireOnly);
        Assert.Equal(1 << 8, (int)FuseSetAttrFlags.MtimeNow);
        Assert.Equal(1 << 17, (int)FuseSetAttrFlags.Touch);
    }

    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    private static long FieldOffset<TStruct>(TStruct* start, void* field)
        where TStruct : unmanaged => (byte*)field - (byte*)start;

    private static byte[] AsBytes(ref FuseFileInfo info) => MemoryMarshal.AsBytes(new Span<FuseFileInfo>(ref info)).ToArray();
}
