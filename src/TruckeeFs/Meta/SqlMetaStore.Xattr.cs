using Dapper;

namespace TruckeeFs.Meta;

public sealed partial class SqlMetaStore
{
    public int GetXattr(long inode, byte[] name, out byte[] value)
    {
        var row = Read(c => c.QuerySingleOrDefault<byte[]>("SELECT value FROM xattrs WHERE inode = @inode AND name = @name", new { inode, name }));
        value = row ?? [];
        return row is null ? Errno.ENODATA : 0;
    }

    /// <summary>The longest name list listxattr(2) can return (XATTR_LIST_MAX): each name and its NUL.</summary>
    public const int XattrListMax = 65536;

    public int SetXattr(long inode, byte[] name, byte[] value, XattrFlags flags, long now) => Write((c, t) =>
    {
        // The inode's row lock orders every change of its attributes, so the list's length holds until the commit.
        if (SelectInode(c, t, inode) is null) return Errno.ENOENT;
        var names = c.QuerySingle<XattrNames>(
            "SELECT COUNT(CASE WHEN name = @name THEN 1 END) AS Matching, COALESCE(SUM(LENGTH(name) + 1), 0) AS ListLength FROM xattrs WHERE inode = @inode",
            new { inode, name }, t);
        var exists = names.Matching > 0;
        if (exists && (flags & XattrFlags.Create) != 0) return Errno.EEXIST;
        if (!exists && (flags & XattrFlags.Replace) != 0) return Errno.ENODATA;
        // A name beyond what listxattr can return would make the list fail with E2BIG for good
        // (and cp -a, rsync -X and tar --xattrs with it): refused as ext4 refuses names it has no room for.
        if (!exists && names.ListLength + name.Length + 1 > XattrListMax) return Errno.ENOSPC;
        c.Execute(_dialect.Upsert("xattrs", "inode, name, value", "@inode, @name, @value", "inode, name", "value = @value"), new { inode, name, value }, t);
        c.Execute("UPDATE inodes SET ctime = @now WHERE id = @inode", new { inode, now }, t);
        return 0;
    });

    public int ListXattrs(long inode, out IReadOnlyList<byte[]> names)
    {
        names = Read(c => c.Query<byte[]>("SELECT name FROM xattrs WHERE inode = @inode ORDER BY name", new { inode }).AsList());
        return 0;
    }

    public int RemoveXattr(long inode, byte[] name, long now) => Write((c, t) =>
    {
        if (c.Execute("DELETE FROM xattrs WHERE inode = @inode AND name = @name", new { inode, name }, t) == 0) return Errno.ENODATA;
        c.Execute("UPDATE inodes SET ctime = @now WHERE id = @inode", new { inode, now }, t);
        return 0;
    });

    private sealed class XattrNames
    {
        public long Matching { get; set; }
        public long ListLength { get; set; }
    }
}
