using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    private const int SymlinkMax = 4095;

    /// <summary>Creates a regular file, device, FIFO or socket (<paramref name="mode"/> carries the type).</summary>
    public int MakeNode(RequestContext context, long parent, ReadOnlySpan<byte> name, long mode, long rdev, out Inode entry)
    {
        var type = mode & FileModes.TypeMask;
        if (type is not (FileModes.Regular or FileModes.Fifo or FileModes.Socket or FileModes.CharDevice or FileModes.BlockDevice or 0))
        {
            entry = null!;
            return Errno.EINVAL;
        }
        if (type == 0) mode |= FileModes.Regular;
        var keepRdev = type is FileModes.CharDevice or FileModes.BlockDevice;
        return CreateNode(parent, name, new NewNode(mode, context.Uid, context.Gid, keepRdev ? rdev : 0), out entry);
    }

    public int MakeDirectory(RequestContext context, long parent, ReadOnlySpan<byte> name, long mode, out Inode entry) =>
        CreateNode(parent, name, new NewNode(FileModes.Directory | (mode & FileModes.PermissionMask), context.Uid, context.Gid), out entry);

    public int Symlink(RequestContext context, long parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, out Inode entry)
    {
        if (target.Length > SymlinkMax)
        {
            entry = null!;
            return Errno.ENAMETOOLONG;
        }
        return CreateNode(parent, name, new NewNode(FileModes.Symlink | 0x1FF, context.Uid, context.Gid, 0, target.ToArray()), out entry);
    }

    public int Link(long inode, long newParent, ReadOnlySpan<byte> newName, out Inode entry)
    {
        entry = null!;
        if (!ValidName(newName, out var status)) return status;
        status = _meta.Link(inode, newParent, newName.ToArray(), Now(), out var linked);
        if (status == 0) entry = Remember(linked);
        return status;
    }

    public int Unlink(long parent, ReadOnlySpan<byte> name)
    {
        if (!ValidName(name, out var status)) return status;
        status = _meta.Unlink(parent, name.ToArray(), Now(), out var unlinked);
        if (status == 0) ReclaimIfUnused(unlinked);
        return status;
    }

    public int RemoveDirectory(long parent, ReadOnlySpan<byte> name)
    {
        if (!ValidName(name, out var status)) return status;
        status = _meta.RemoveDirectory(parent, name.ToArray(), Now(), out var removed);
        if (status == 0) ReclaimIfUnused(removed);
        return status;
    }

    /// <summary>rename(2) and renameat2(2): <paramref name="flags"/> may hold RENAME_NOREPLACE (1) or RENAME_EXCHANGE (2).</summary>
    public int Rename(long parent, ReadOnlySpan<byte> name, long newParent, ReadOnlySpan<byte> newName, uint flags)
    {
        if (!ValidName(name, out var status) || !ValidName(newName, out status)) return status;
        var renameFlags = (RenameFlags)flags;
        if ((flags & ~3u) != 0 || renameFlags == (RenameFlags.NoReplace | RenameFlags.Exchange)) return Errno.EINVAL;
        status = _meta.Rename(parent, name.ToArray(), newParent, newName.ToArray(), renameFlags, Now(), out var replaced);
        if (status == 0) ReclaimIfUnused(replaced);
        return status;
    }

    private int CreateNode(long parent, ReadOnlySpan<byte> name, NewNode node, out Inode entry)
    {
        entry = null!;
        if (!ValidName(name, out var status)) return status;
        status = _meta.Create(parent, name.ToArray(), node, Now(), out var created);
        if (status == 0) entry = Remember(created);
        return status;
    }
}
