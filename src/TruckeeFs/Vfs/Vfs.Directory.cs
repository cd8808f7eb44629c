using TruckeeFs.Meta;

namespace TruckeeFs.Vfs;

public sealed partial class Vfs
{
    // Offsets 1 and 2 follow "." and ".."; an entry's offset is its metadata cookie plus 2, so
    // offsets stay valid while the directory changes.
    private const long DotEntries = 2;

    public int OpenDirectory(long inode)
    {
        var row = _meta.GetInode(inode);
        if (row is null) return Errno.ENOENT;
        return row.IsDirectory ? 0 : Errno.ENOTDIR;
    }

    /// <summary>
    /// Up to <paramref name="limit"/> entries after <paramref name="offset"/> (0 = from the
    /// start). For readdirplus, the caller calls <see cref="Remember"/> for each entry it
    /// actually returns to the kernel, other than "." and "..".
    /// </summary>
    public int ReadDirectory(long inode, long offset, int limit, out IReadOnlyList<ListingEntry> entries)
    {
        var list = new List<ListingEntry>(Math.Min(limit, 256));
        entries = list;
        var directory = _meta.GetInode(inode);
        if (directory is null) return Errno.ENOENT;
        if (!directory.IsDirectory) return Errno.ENOTDIR;
        if (offset < 1) list.Add(new ListingEntry("."u8.ToArray(), directory, 1, true));
        if (offset < 2 && list.Count < limit)
        {
            var parent = _meta.GetInode(_meta.ParentOf(inode)) ?? directory;
            list.Add(new ListingEntry(".."u8.ToArray(), parent, 2, true));
        }
        if (list.Count < limit)
        {
            foreach (var entry in _meta.ReadDirectory(inode, Math.Max(0, offset - DotEntries), limit - list.Count))
                list.Add(new ListingEntry(entry.Name, Overlay(entry.Inode), entry.Cookie + DotEntries, false));
        }
        return 0;
    }
}
