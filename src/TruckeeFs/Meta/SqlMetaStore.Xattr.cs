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

    public int SetXattr(long inode, byte[] name, byte[] value, XattrFlags flags, long now) => Write((c, t) =>
    {
        if (SelectInode(c, t, inode) is null) return Errno.ENOENT;
        var exists = c.ExecuteScalar<long>($"SELECT COUNT(*) FROM xattrs WHERE inode = @inode AND name = @name{_forUpdate}", new { inode, name }, t) > 0;
        if (exists && (flags & XattrFlags.Create) != 0) return Errno.EEXIST;
        if (!exists && (flags & XattrFlags.Replace) != 0) return Errno.ENODATA;
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
}
