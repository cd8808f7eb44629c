using System.Text;
using TruckeeFs.Fuse;

namespace TruckeeFs.Tests.Fuse;

/// <summary>
/// A one-directory filesystem in memory for driving <see cref="FuseSession"/> with real system
/// calls. Special names: <c>slow.txt</c> answers reads 200 ms later from another thread;
/// <c>boom.txt</c> throws from open; reading <c>sleepy-N.txt</c> blocks its thread for 300 ms;
/// <c>big.bin</c> holds <see cref="BigSize"/> bytes.
/// </summary>
internal sealed class MemoryFileSystem : FuseOperations
{
    public const ulong RootInode = 1;
    public const int SleepyFiles = 4;
    public static readonly byte[] HelloContent = "Hello, FUSE!\n"u8.ToArray();
    public static readonly byte[] SlowContent = "answered later\n"u8.ToArray();
    public const int BigSize = 4 << 20;

    private const uint DirectoryMode = 0x4000 | 0b111_101_101; // S_IFDIR | 0755
    private const uint FileMode = 0x8000 | 0b110_100_100;      // S_IFREG | 0644
    private const int OTrunc = 0x200;
    private const int XattrCreate = 1;
    private const int XattrReplace = 2;

    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, Node> _nodes = [];
    private readonly SortedDictionary<string, ulong> _root = new(StringComparer.Ordinal);
    private readonly HashSet<ulong> _sleepy = [];
    private readonly bool _readdirPlus;
    private ulong _nextInode = RootInode;

    public MemoryFileSystem(bool readdirPlus)
    {
        _readdirPlus = readdirPlus;
        Add(DirectoryMode, []);
        AddFile("hello.txt", HelloContent);
        AddFile("slow.txt", SlowContent);
        AddFile("boom.txt", "never read\n"u8.ToArray());
        for (var i = 0; i < SleepyFiles; i++)
        {
            _sleepy.Add(AddFile($"sleepy-{i}.txt", HelloContent).Inode);
        }

        AddFile("big.bin", new byte[BigSize]);
    }

    /// <summary>max_write and max_readahead asked for in Init; 0 keeps libfuse's.</summary>
    public uint RequestSize { get; init; }

    /// <summary>The largest read request the kernel sent.</summary>
    public ulong LargestRead;

    /// <summary>Requests whose file handle was not the one open or create answered.</summary>
    public int WrongHandles;
    public HashSet<int> SleepingThreads { get; } = [];
    public int ReadDirCalls;
    public int ReadDirPlusCalls;

    /// <summary>Listing replies that ended because the next entry did not fit.</summary>
    public int FullReplies;
    public ulong LargestReadDirSize;
    public uint ProtocolMajor;
    public FuseCapabilities Capable;
    public FuseCapabilities Want;
    public bool Destroyed;

    public ulong InodeOf(string name)
    {
        lock (_gate)
        {
            return _root[name];
        }
    }

    public byte[] ContentOf(string name)
    {
        lock (_gate)
        {
            return _nodes[_root[name]].Data.ToArray();
        }
    }

    public override void Init(FuseConnection connection)
    {
        ProtocolMajor = connection.ProtocolMajor;
        Capable = connection.Capable;
        if (RequestSize != 0)
        {
            connection.MaxWrite = RequestSize;
            connection.MaxReadahead = RequestSize;
        }

        if (!_readdirPlus)
        {
            connection.Want &= ~(FuseCapabilities.ReaddirPlus | FuseCapabilities.ReaddirPlusAuto);
        }

        Want = connection.Want;
    }

    public override void Destroy() => Destroyed = true;

    public override void Lookup(FuseRequest request, ulong parent, ReadOnlySpan<byte> name)
    {
        lock (_gate)
        {
            if (parent == RootInode && _root.TryGetValue(Encoding.UTF8.GetString(name), out var inode))
            {
                request.ReplyEntry(Entry(_nodes[inode]));
            }
            else
            {
                request.ReplyError(Errno.ENOENT);
            }
        }
    }

    public override void GetAttr(FuseRequest request, ulong inode, FuseFileInfo? file)
    {
        lock (_gate)
        {
            if (_nodes.TryGetValue(inode, out var node))
            {
                request.ReplyAttr(Stat(node), 1.0);
            }
            else
            {
                request.ReplyError(Errno.ENOENT);
            }
        }
    }

    public override void SetAttr(FuseRequest request, ulong inode, in FuseStat attr, FuseSetAttrFlags toSet, FuseFileInfo? file)
    {
        lock (_gate)
        {
            var node = _nodes[inode];
            if (toSet.HasFlag(FuseSetAttrFlags.Mode))
            {
                node.Mode = (node.Mode & 0xF000) | (attr.Mode & 0xFFF);
            }

            if (toSet.HasFlag(FuseSetAttrFlags.Size))
            {
                node.Data.SetLength(attr.Size);
            }

            request.ReplyAttr(Stat(node), 1.0);
        }
    }

    public override void Open(FuseRequest request, ulong inode, FuseFileInfo file)
    {
        lock (_gate)
        {
            if (inode == _root["boom.txt"])
            {
                throw new InvalidOperationException("boom");
            }

            if ((file.Flags & OTrunc) != 0)
            {
                _nodes[inode].Data.SetLength(0);
            }
        }

        file.Handle = inode + 1000;
        request.ReplyOpen(file);
    }

    public override void Read(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file)
    {
        CheckHandle(inode, file);
        byte[] data;
        lock (_gate)
        {
            LargestRead = Math.Max(LargestRead, size);
            var content = _nodes[inode].Data;
            var start = (int)Math.Min(offset, content.Length);
            var count = (int)Math.Min((long)size, content.Length - start);
            data = content.GetBuffer().AsSpan(start, count).ToArray();
        }

        if (_sleepy.Contains(inode))
        {
            // Holds its libfuse thread, so concurrent reads only overlap on several threads.
            lock (_gate)
            {
                SleepingThreads.Add(Environment.CurrentManagedThreadId);
            }

            Thread.Sleep(300);
        }
        else if (inode == InodeOf("slow.txt"))
        {
            _ = Task.Run(async () =>
            {
                await Task.Delay(200);
                request.ReplyBuffer(data);
            });
            return;
        }

        request.ReplyBuffer(data);
    }

    public override void Write(FuseRequest request, ulong inode, ReadOnlySpan<byte> data, long offset, FuseFileInfo file)
    {
        CheckHandle(inode, file);
        lock (_gate)
        {
            var content = _nodes[inode].Data;
            content.Position = offset;
            content.Write(data);
        }

        request.ReplyWrite((ulong)data.Length);
    }

    public override void Flush(FuseRequest request, ulong inode, FuseFileInfo file) => request.ReplyError(0);

    public override void Release(FuseRequest request, ulong inode, FuseFileInfo file)
    {
        CheckHandle(inode, file);
        request.ReplyError(0);
    }

    public override void Create(FuseRequest request, ulong parent, ReadOnlySpan<byte> name, uint mode, FuseFileInfo file)
    {
        lock (_gate)
        {
            var node = AddFile(Encoding.UTF8.GetString(name), []);
            node.Mode = 0x8000 | (mode & 0xFFF);
            file.Handle = node.Inode + 1000;
            request.ReplyCreate(Entry(node), file);
        }
    }

    public override void Unlink(FuseRequest request, ulong parent, ReadOnlySpan<byte> name)
    {
        lock (_gate)
        {
            request.ReplyError(_root.Remove(Encoding.UTF8.GetString(name)) ? 0 : Errno.ENOENT);
        }
    }

    public override void ReadDir(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file)
    {
        Interlocked.Increment(ref ReadDirCalls);
        LargestReadDirSize = Math.Max(LargestReadDirSize, size);
        var buffer = new FuseDirectoryBuffer(size);
        lock (_gate)
        {
            var entries = Listing();
            for (var i = (int)offset; i < entries.Count; i++)
            {
                if (!buffer.TryAdd(request, Encoding.UTF8.GetBytes(entries[i].Name), Stat(entries[i].Node), i + 1))
                {
                    Interlocked.Increment(ref FullReplies);
                    break;
                }
            }
        }

        request.ReplyBuffer(buffer.Written);
    }

    public override void ReadDirPlus(FuseRequest request, ulong inode, ulong size, long offset, FuseFileInfo file)
    {
        Interlocked.Increment(ref ReadDirPlusCalls);
        LargestReadDirSize = Math.Max(LargestReadDirSize, size);
        var buffer = new FuseDirectoryBuffer(size);
        lock (_gate)
        {
            var entries = Listing();
            for (var i = (int)offset; i < entries.Count; i++)
            {
                if (!buffer.TryAddPlus(request, Encoding.UTF8.GetBytes(entries[i].Name), Entry(entries[i].Node), i + 1))
                {
                    Interlocked.Increment(ref FullReplies);
                    break;
                }
            }
        }

        request.ReplyBuffer(buffer.Written);
    }

    public override void StatFs(FuseRequest request, ulong inode)
    {
        var stat = new FuseStatVfs
        {
            BlockSize = 4096,
            FragmentSize = 4096,
            Blocks = 1000,
            BlocksFree = 500,
            BlocksAvailable = 400,
            Files = 100,
            FilesFree = 50,
            FilesAvailable = 50,
            NameMax = 255,
        };
        request.ReplyStatFs(stat);
    }

    public override void SetXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        lock (_gate)
        {
            var xattrs = _nodes[inode].Xattrs;
            var key = Encoding.UTF8.GetString(name);
            var exists = xattrs.ContainsKey(key);
            if ((flags & XattrCreate) != 0 && exists)
            {
                request.ReplyError(Errno.EEXIST);
            }
            else if ((flags & XattrReplace) != 0 && !exists)
            {
                request.ReplyError(Errno.ENODATA);
            }
            else
            {
                xattrs[key] = value.ToArray();
                request.ReplyError(0);
            }
        }
    }

    public override void GetXattr(FuseRequest request, ulong inode, ReadOnlySpan<byte> name, ulong size)
    {
        lock (_gate)
        {
            if (!_nodes[inode].Xattrs.TryGetValue(Encoding.UTF8.GetString(name), out var value))
            {
                request.ReplyError(Errno.ENODATA);
            }
            else if (size == 0)
            {
                request.ReplyXattrSize((ulong)value.Length);
            }
            else if (size < (ulong)value.Length)
            {
                request.ReplyError(Errno.ERANGE);
            }
            else
            {
                request.ReplyBuffer(value);
            }
        }
    }

    private void CheckHandle(ulong inode, FuseFileInfo file)
    {
        if (file.Handle != inode + 1000)
        {
            Interlocked.Increment(ref WrongHandles);
        }
    }

    private List<(string Name, Node Node)> Listing()
    {
        var entries = new List<(string, Node)> { (".", _nodes[RootInode]), ("..", _nodes[RootInode]) };
        entries.AddRange(_root.Select(e => (e.Key, _nodes[e.Value])));
        return entries;
    }

    private Node AddFile(string name, byte[] content)
    {
        var node = Add(FileMode, content);
        _root[name] = node.Inode;
        return node;
    }

    private Node Add(uint mode, byte[] content)
    {
        var node = new Node(_nextInode++, mode);
        node.Data.Write(content);
        _nodes[node.Inode] = node;
        return node;
    }

    private static FuseEntryParam Entry(Node node) => new()
    {
        Inode = node.Inode,
        Attr = Stat(node),
        AttrTimeout = 1.0,
        EntryTimeout = 1.0,
    };

    private static FuseStat Stat(Node node) => new()
    {
        Inode = node.Inode,
        Mode = node.Mode,
        Nlink = (node.Mode & 0x4000) != 0 ? 2u : 1u,
        Size = node.Data.Length,
        Blocks = (node.Data.Length + 511) / 512,
        BlockSize = 4096,
        MtimeSec = 1_700_000_000,
        MtimeNsec = 123_000_000,
    };

    private sealed class Node(ulong inode, uint mode)
    {
        public ulong Inode { get; } = inode;
        public uint Mode { get; set; } = mode;
        public MemoryStream Data { get; } = new();
        public Dictionary<string, byte[]> Xattrs { get; } = [];
    }
}
