namespace TruckeeFs.Fuse;

/// <summary>
/// The connection parameters negotiated with the kernel, valid only during
/// <see cref="FuseOperations.Init"/> (it wraps libfuse's <c>struct fuse_conn_info</c>). Set
/// <see cref="Want"/> to a subset of <see cref="Capable"/>; libfuse has already enabled its
/// defaults (for example <see cref="FuseCapabilities.AsyncRead"/>, and
/// <see cref="FuseCapabilities.ReaddirPlus"/> when readdirplus is implemented).
/// </summary>
public sealed unsafe class FuseConnection
{
    private ConnInfo* _info;

    internal FuseConnection(ConnInfo* info) => _info = info;

    /// <summary>Kernel protocol major version.</summary>
    public uint ProtocolMajor => Info->ProtoMajor;

    /// <summary>Kernel protocol minor version.</summary>
    public uint ProtocolMinor => Info->ProtoMinor;

    /// <summary>Largest write the kernel sends, in bytes.</summary>
    public uint MaxWrite { get => Info->MaxWrite; set => Info->MaxWrite = value; }

    /// <summary>Largest read the kernel asks for (from the max_read mount option).</summary>
    public uint MaxRead => Info->MaxRead;

    /// <summary>Largest readahead, in bytes.</summary>
    public uint MaxReadahead { get => Info->MaxReadahead; set => Info->MaxReadahead = value; }

    /// <summary>What the kernel and libfuse support.</summary>
    public FuseCapabilities Capable => (FuseCapabilities)Info->Capable;

    /// <summary>What the filesystem asks for.</summary>
    public FuseCapabilities Want { get => (FuseCapabilities)Info->Want; set => Info->Want = (uint)value; }

    /// <summary>Most background (asynchronous) requests the kernel keeps outstanding.</summary>
    public uint MaxBackground { get => Info->MaxBackground; set => Info->MaxBackground = value; }

    /// <summary>Background requests above which the kernel reports congestion.</summary>
    public uint CongestionThreshold { get => Info->CongestionThreshold; set => Info->CongestionThreshold = value; }

    /// <summary>Granularity of the timestamps the filesystem keeps, in nanoseconds (1 to 10^9, a power of 10).</summary>
    public uint TimeGranularity { get => Info->TimeGran; set => Info->TimeGran = value; }

    private ConnInfo* Info => _info != null ? _info : throw new ObjectDisposedException(nameof(FuseConnection), "The connection is only valid during Init.");

    internal void Invalidate() => _info = null;
}
