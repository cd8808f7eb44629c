using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    private const int XattrNameMax = 255;
    private const int XattrValueMax = 65536;
    private const int E2BIG = 7;

    /// <summary>
    /// The value of an extended attribute. With <paramref name="size"/> 0 only its length is
    /// wanted; ERANGE when it does not fit.
    /// </summary>
    public int GetXattr(long inode, ReadOnlySpan<byte> name, int size, out byte[] value)
    {
        value = [];
        if (!ValidXattrName(name, out var status)) return status;
        // Before the row: the kernel asks at every write(2), and a reclaimed inode is forgotten by both.
        if (_cache.HasNoXattrs(inode)) return Errno.ENODATA;
        if (CachedInode(inode) is null) return Errno.ENOENT;
        status = _meta.GetXattr(inode, name.ToArray(), out value);
        if (status == 0 && size > 0 && value.Length > size) return Errno.ERANGE;
        return status;
    }

    public int SetXattr(long inode, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        if (!ValidXattrName(name, out var status)) return status;
        if (value.Length > XattrValueMax) return E2BIG;
        if ((flags & ~3) != 0 || flags == 3) return Errno.EINVAL;
        return Changed(_meta.SetXattr(inode, name.ToArray(), value.ToArray(), (XattrFlags)flags, Now()), inode);
    }

    /// <summary>The names, each followed by a NUL, as listxattr(2) returns them.</summary>
    public int ListXattrs(long inode, int size, out byte[] list)
    {
        list = [];
        if (_cache.HasNoXattrs(inode)) return 0;
        if (CachedInode(inode) is null) return Errno.ENOENT;
        var ticket = _cache.Ticket();
        _meta.ListXattrs(inode, out var names);
        if (names.Count == 0) _cache.PutNoXattrs(inode, ticket);
        var buffer = new List<byte>();
        foreach (var name in names)
        {
            buffer.AddRange(name);
            buffer.Add(0);
        }
        list = [.. buffer];
        return size > 0 && list.Length > size ? Errno.ERANGE : 0;
    }

    public int RemoveXattr(long inode, ReadOnlySpan<byte> name)
    {
        if (!ValidXattrName(name, out var status)) return status;
        return Changed(_meta.RemoveXattr(inode, name.ToArray(), Now()), inode);
    }

    /// <summary>
    /// POSIX ACLs live in "system." attributes that only the kernel may interpret; without ACL
    /// support they are refused, as on a filesystem mounted with noacl, so tools skip them.
    /// </summary>
    private static bool ValidXattrName(ReadOnlySpan<byte> name, out int status)
    {
        status = name.Length == 0 || name.Length > XattrNameMax ? Errno.ERANGE
            : name.StartsWith("system."u8) ? Errno.EOPNOTSUPP
            : name.IndexOf((byte)'.') <= 0 ? Errno.EOPNOTSUPP
            : 0;
        return status == 0;
    }

    /// <summary>An xattr change moved the inode's ctime: the other mounts' cached attributes are stale.</summary>
    private int Changed(int status, long inode)
    {
        if (status == 0) Publish(Invalidation.Attributes(inode));
        return status;
    }
}
