using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace TruckeeFs.Meta;

/// <summary>
/// SQLite's own file layer (the "unix" VFS) with one change: a transaction's write-ahead log
/// frames reach the file in one system call, when the transaction commits, instead of two
/// writes per page (a frame's 24-byte header and its page). A metadata transaction changes
/// about ten pages, so an unlink or a create made some twenty pwrite(2) calls, a fifth of the
/// mount's CPU in an unlink (measured with perf); now it makes one.
///
/// Nothing waits in memory past a commit: SQLite marks the last frame of a transaction in its
/// header (the database size after the commit, zero in every other frame), and the buffered
/// frames go to the file as soon as that frame's page has been written, before the commit
/// returns. (SQLite writes a frame in two calls, its header and then its page, as it has since
/// WAL mode exists; SqliteWalVfsTests fail on a library that writes otherwise.) A crash of the
/// process therefore loses what it lost before, an uncommitted transaction, which SQLite
/// ignores anyway. Any other call on the log (a read, its size, a truncation, a sync, a close)
/// writes what is buffered first, so SQLite never sees a log that differs from the file. Every
/// other file (the database, temporary files) is SQLite's own, untouched.
///
/// Registered as the process's default VFS, under its own name, once the library is loaded.
/// </summary>
internal static unsafe class SqliteWalVfs
{
    public const string Name = "truckeefs-wal";

    private const int Ok = 0;
    private const int OpenWal = 0x00080000;
    private const int FrameHeaderSize = 24;
    /// <summary>
    /// Bytes buffered at most: a typical transaction's frames, and below what SQLite's unix
    /// file layer writes in one call (it masks a write's length to 17 bits, and a longer one
    /// comes back short, as a full disk would).
    /// </summary>
    private const int BufferCapacity = 64 << 10;

    /// <summary>The start of sqlite3_vfs (version 3): the fields before xOpen and xOpen itself.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct VfsHead
    {
        public int Version;
        public int FileSize;
        public int MaxPathname;
        public nint Next;
        public nint Name;
        public nint AppData;
        public delegate* unmanaged<VfsHead*, nint, nint, int, int*, int> Open;
    }

    /// <summary>sqlite3_io_methods, version 3.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct IoMethods
    {
        public int Version;
        public delegate* unmanaged<nint, int> Close;
        public delegate* unmanaged<nint, byte*, int, long, int> Read;
        public delegate* unmanaged<nint, byte*, int, long, int> Write;
        public delegate* unmanaged<nint, long, int> Truncate;
        public delegate* unmanaged<nint, int, int> Sync;
        public delegate* unmanaged<nint, long*, int> FileSize;
        public delegate* unmanaged<nint, int, int> Lock;
        public delegate* unmanaged<nint, int, int> Unlock;
        public delegate* unmanaged<nint, int*, int> CheckReservedLock;
        public delegate* unmanaged<nint, int, nint, int> FileControl;
        public delegate* unmanaged<nint, int> SectorSize;
        public delegate* unmanaged<nint, int> DeviceCharacteristics;
        public delegate* unmanaged<nint, int, int, int, nint*, int> ShmMap;
        public delegate* unmanaged<nint, int, int, int, int> ShmLock;
        public delegate* unmanaged<nint, void> ShmBarrier;
        public delegate* unmanaged<nint, int, int> ShmUnmap;
        public delegate* unmanaged<nint, long, int, nint*, int> Fetch;
        public delegate* unmanaged<nint, long, nint, int> Unfetch;
    }

    /// <summary>
    /// The sqlite3_file SQLite allocates for a log opened here: its methods (this class's), the
    /// buffered frames, and SQLite's own file after them, to which every call goes on.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct WalFile
    {
        public IoMethods* Methods;
        public byte* Buffer;
        /// <summary>Where in the log the buffered bytes go.</summary>
        public long BufferOffset;
        public int Buffered;
        /// <summary>Where the log ends, buffered frames included: only writes there are buffered.</summary>
        public long LogEnd;
        /// <summary>The frame being written ends a transaction: write the buffer out after its page.</summary>
        public int CommitFrameOpen;
    }

    private static readonly int WalFileSize = (sizeof(WalFile) + 15) & ~15;
    private static readonly Lock Gate = new();
    private static VfsHead* _unix;
    private static IoMethods* _walMethods;

    /// <summary>Registers the VFS as the default of the SQLite library loaded as <paramref name="library"/>; once per process.</summary>
    public static void Register(nint library)
    {
        lock (Gate)
        {
            if (_unix is not null) return;
            var find = (delegate* unmanaged<byte*, VfsHead*>)NativeLibrary.GetExport(library, "sqlite3_vfs_find");
            var register = (delegate* unmanaged<VfsHead*, int, int>)NativeLibrary.GetExport(library, "sqlite3_vfs_register");
            var unix = find(null);
            if (unix is null || unix->Version < 1) throw new MetaStoreException("the SQLite library has no default file layer (VFS)");

            // A copy of the default VFS: every call but xOpen goes straight to SQLite's own
            // functions, which find their state through fields the copy keeps (pAppData).
            var size = unix->Version switch { 1 => 136, 2 => 144, _ => 168 };
            var vfs = (VfsHead*)NativeMemory.AllocZeroed((nuint)size);
            Buffer.MemoryCopy(unix, vfs, size, size);
            vfs->FileSize = WalFileSize + unix->FileSize;
            vfs->Next = 0;
            vfs->Name = Marshal.StringToCoTaskMemUTF8(Name);
            vfs->Open = &Open;

            var methods = (IoMethods*)NativeMemory.AllocZeroed((nuint)sizeof(IoMethods));
            // Version 1: the shared-memory and memory-mapping methods are never asked of a log.
            methods->Version = 1;
            methods->Close = &Close;
            methods->Read = &Read;
            methods->Write = &Write;
            methods->Truncate = &Truncate;
            methods->Sync = &Sync;
            methods->FileSize = &FileSize;
            methods->Lock = &LockFile;
            methods->Unlock = &Unlock;
            methods->CheckReservedLock = &CheckReservedLock;
            methods->FileControl = &FileControl;
            methods->SectorSize = &SectorSize;
            methods->DeviceCharacteristics = &DeviceCharacteristics;

            _unix = unix;
            _walMethods = methods;
            var status = register(vfs, 1);
            if (status != Ok) throw new MetaStoreException($"could not register the SQLite file layer {Name} (SQLite error {status})");
        }
    }

    /// <summary>SQLite's own file inside ours.</summary>
    private static nint Inner(nint file) => file + WalFileSize;

    private static IoMethods* InnerMethods(nint file) => *(IoMethods**)Inner(file);

    [UnmanagedCallersOnly]
    private static int Open(VfsHead* vfs, nint name, nint file, int flags, int* outFlags)
    {
        // Anything but a log is SQLite's own file at the start of ours, with its own methods.
        if ((flags & OpenWal) == 0) return _unix->Open(_unix, name, file, flags, outFlags);
        var wal = (WalFile*)file;
        *wal = default;
        var status = _unix->Open(_unix, name, Inner(file), flags, outFlags);
        if (status != Ok) return status;
        long size;
        status = InnerMethods(file)->FileSize(Inner(file), &size);
        if (status != Ok)
        {
            InnerMethods(file)->Close(Inner(file));
            return status;
        }
        wal->LogEnd = size;
        wal->Buffer = (byte*)NativeMemory.Alloc(BufferCapacity);
        wal->Methods = _walMethods;
        return Ok;
    }

    /// <summary>
    /// Writes the buffered frames to the file. On failure they are dropped with the transaction
    /// that wrote them, which fails, and the file may end anywhere after where they started:
    /// the log's end is taken to be there, so the next frames there are buffered and any
    /// further ones go straight to the file.
    /// </summary>
    private static int WriteOut(nint file)
    {
        var wal = (WalFile*)file;
        if (wal->Buffered == 0) return Ok;
        var status = InnerMethods(file)->Write(Inner(file), wal->Buffer, wal->Buffered, wal->BufferOffset);
        wal->Buffered = 0;
        if (status != Ok) wal->LogEnd = wal->BufferOffset;
        return status;
    }

    [UnmanagedCallersOnly]
    private static int Write(nint file, byte* data, int amount, long offset)
    {
        var wal = (WalFile*)file;
        int status;
        if (wal->Buffered > 0 && offset >= wal->BufferOffset && offset + amount <= wal->LogEnd)
        {
            // A page of this transaction written again (SQLite rewrites a page it changes twice).
            Buffer.MemoryCopy(data, wal->Buffer + (offset - wal->BufferOffset), amount, amount);
            status = Ok;
        }
        else if (offset == wal->LogEnd && amount <= BufferCapacity)
        {
            status = wal->Buffered + amount > BufferCapacity ? WriteOut(file) : Ok;
            if (status != Ok) return status;
            if (wal->Buffered == 0) wal->BufferOffset = offset;
            Buffer.MemoryCopy(data, wal->Buffer + wal->Buffered, BufferCapacity - wal->Buffered, amount);
            wal->Buffered += amount;
            wal->LogEnd = offset + amount;
        }
        else
        {
            // Not an append: the log's first transaction after it started over (written over the
            // old one, in place) and the checksums SQLite rewrites after a commit go straight
            // to the file, so that nothing stays here once the commit returns.
            status = WriteOut(file);
            if (status == Ok) status = InnerMethods(file)->Write(Inner(file), data, amount, offset);
            if (status == Ok) wal->LogEnd = Math.Max(wal->LogEnd, offset + amount);
        }
        if (status != Ok) return status;
        if (amount == FrameHeaderSize)
        {
            // A frame header: its second field is the database's size in pages after a commit, zero otherwise.
            wal->CommitFrameOpen = BinaryPrimitives.ReadUInt32BigEndian(new ReadOnlySpan<byte>(data + 4, 4)) != 0 ? 1 : 0;
            return Ok;
        }
        if (wal->CommitFrameOpen == 0) return Ok;
        wal->CommitFrameOpen = 0;
        return WriteOut(file);
    }

    [UnmanagedCallersOnly]
    private static int Close(nint file)
    {
        var wal = (WalFile*)file;
        var written = WriteOut(file);
        var closed = InnerMethods(file)->Close(Inner(file));
        NativeMemory.Free(wal->Buffer);
        wal->Buffer = null;
        return written != Ok ? written : closed;
    }

    [UnmanagedCallersOnly]
    private static int Read(nint file, byte* data, int amount, long offset) =>
        WriteOut(file) is var status and not Ok ? status : InnerMethods(file)->Read(Inner(file), data, amount, offset);

    [UnmanagedCallersOnly]
    private static int Truncate(nint file, long size)
    {
        var status = WriteOut(file);
        if (status == Ok) status = InnerMethods(file)->Truncate(Inner(file), size);
        if (status == Ok) ((WalFile*)file)->LogEnd = size;
        return status;
    }

    [UnmanagedCallersOnly]
    private static int Sync(nint file, int flags) =>
        WriteOut(file) is var status and not Ok ? status : InnerMethods(file)->Sync(Inner(file), flags);

    [UnmanagedCallersOnly]
    private static int FileSize(nint file, long* size) =>
        WriteOut(file) is var status and not Ok ? status : InnerMethods(file)->FileSize(Inner(file), size);

    [UnmanagedCallersOnly]
    private static int LockFile(nint file, int level) =>
        WriteOut(file) is var status and not Ok ? status : InnerMethods(file)->Lock(Inner(file), level);

    [UnmanagedCallersOnly]
    private static int Unlock(nint file, int level) =>
        WriteOut(file) is var status and not Ok ? status : InnerMethods(file)->Unlock(Inner(file), level);

    [UnmanagedCallersOnly]
    private static int CheckReservedLock(nint file, int* result) => InnerMethods(file)->CheckReservedLock(Inner(file), result);

    [UnmanagedCallersOnly]
    private static int FileControl(nint file, int operation, nint argument) =>
        WriteOut(file) is var status and not Ok ? status : InnerMethods(file)->FileControl(Inner(file), operation, argument);

    [UnmanagedCallersOnly]
    private static int SectorSize(nint file) => InnerMethods(file)->SectorSize(Inner(file));

    [UnmanagedCallersOnly]
    private static int DeviceCharacteristics(nint file) => InnerMethods(file)->DeviceCharacteristics(Inner(file));
}
