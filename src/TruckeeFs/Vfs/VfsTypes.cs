using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

/// <summary>Who asks: the calling process's identity as the kernel reports it.</summary>
public readonly record struct RequestContext(uint Uid, uint Gid, int Pid);

/// <summary>Settings of the engine.</summary>
public sealed record VfsOptions
{
    /// <summary>Size of the immutable blocks file contents are cut into.</summary>
    public long BlockSize { get; init; } = 4 << 20;

    /// <summary>How long the kernel may cache attributes, in seconds.</summary>
    public double AttributeTimeout { get; init; } = 1.0;

    /// <summary>How long the kernel may cache names, in seconds.</summary>
    public double EntryTimeout { get; init; } = 1.0;

    /// <summary>How long an open waits for another mount's pending commit of the file before serving the last committed contents.</summary>
    public TimeSpan CommitWaitTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Folder for cached blocks and staged changes.</summary>
    public required string CacheDirectory { get; init; }

    /// <summary>How the block cache downloads and is pruned.</summary>
    public Cache.CacheOptions Cache { get; init; } = new();

    /// <summary>How often this mount tells the others it is alive, and looks for dead ones.</summary>
    public TimeSpan SessionHeartbeat { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a mount's heartbeat may stay unchanged before the others declare it dead and release its locks.</summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>An entry of a directory listing; <see cref="NextOffset"/> resumes after it.</summary>
public readonly record struct ListingEntry(byte[] Name, Inode Attributes, long NextOffset, bool IsDotEntry);

/// <summary>Filesystem capacity for statfs.</summary>
public readonly record struct FilesystemStatistics(
    long BlockSize, long Blocks, long BlocksFree, long BlocksAvailable, long Files, long FilesFree, long NameMax);

/// <summary>Flags of open(2) the engine looks at.</summary>
public static class OpenFlags
{
    public const int Exclusive = 0x80;
    public const int Truncate = 0x200;
    public const int Append = 0x400;
}
