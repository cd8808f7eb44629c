using System.Data.Common;
using Dapper;

namespace TruckeeFs.Meta;

public sealed partial class SqlMetaStore
{
    public IReadOnlyList<BlockRef> GetBlocks(long inode) => Read(c => SelectBlocks(c, null, inode));

    public int CommitContent(long inode, ContentCommit commit, out Inode updated, out IReadOnlyList<string> unreferenced)
    {
        Inode? result = null;
        var freed = new List<string>();
        var status = Write((c, t) =>
        {
            freed.Clear();
            var row = SelectInode(c, t, inode);
            if (row is null) return Errno.ENOENT;
            // The rows are locked (FOR UPDATE on MySQL, the write lock on SQLite): a concurrent
            // commit of the same file waits, then replaces this version whole.
            var existing = SelectBlocks(c, t, inode).ToDictionary(b => b.Index);
            var dropped = new List<string>();
            foreach (var block in commit.Blocks)
            {
                if (block.Cap is null) continue;
                if (existing.Remove(block.Index, out var old))
                {
                    if (old.Cap == block.Cap && old.Length == block.Length) continue;
                    dropped.Add(old.Cap!);
                }
                AddReference(c, t, block.Cap, block.Length);
                c.Execute(_dialect.Upsert("blocks", "inode, idx, cap, length", "@inode, @Index, @Cap, @Length", "inode, idx", "cap = @Cap, length = @Length"),
                    new { inode, block.Index, block.Cap, block.Length }, t);
            }
            // What is left of the old map is not part of the new version.
            foreach (var gone in existing.Values.Chunk(500))
            {
                c.Execute("DELETE FROM blocks WHERE inode = @inode AND idx IN @indexes", new { inode, indexes = gone.Select(b => b.Index).ToArray() }, t);
                dropped.AddRange(gone.Select(b => b.Cap!));
            }
            // References are dropped after all are taken: a cap may move between blocks.
            foreach (var cap in dropped) DropReference(c, t, cap, freed);

            commit.Attributes.ApplyTo(row);
            row.Size = commit.Size;
            row.Mtime = commit.Mtime;
            row.Ctime = commit.Ctime;
            row.Version++;
            c.Execute(commit.Attributes.IsEmpty
                ? "UPDATE inodes SET size = @Size, mtime = @Mtime, ctime = @Ctime, version = @Version WHERE id = @Id"
                : "UPDATE inodes SET size = @Size, mtime = @Mtime, ctime = @Ctime, version = @Version, mode = @Mode, uid = @Uid, gid = @Gid, atime = @Atime WHERE id = @Id",
                row, t);
            result = row;
            return 0;
        });
        updated = result!;
        unreferenced = freed;
        return status;
    }

    public bool IsUnreferenced(string cap) =>
        Read(c => c.ExecuteScalar<long?>("SELECT refs FROM contents WHERE cap = @cap", new { cap })) is null;

    public int DeleteInode(long inode, out IReadOnlyList<string> unreferenced)
    {
        var freed = new List<string>();
        var status = Write((c, t) =>
        {
            freed.Clear();
            var row = SelectInode(c, t, inode);
            if (row is null) return Errno.ENOENT;
            if (row.Nlink > 0) return Errno.EBUSY;
            // Another mount's open handle keeps it alive; that mount reclaims it on its last close.
            if (c.ExecuteScalar<long?>($"SELECT session FROM opens WHERE inode = @inode LIMIT 1{_forUpdate}", new { inode }, t) is not null) return Errno.EBUSY;
            foreach (var block in SelectBlocks(c, t, inode))
                DropReference(c, t, block.Cap!, freed);
            c.Execute("DELETE FROM blocks WHERE inode = @inode", new { inode }, t);
            c.Execute("DELETE FROM xattrs WHERE inode = @inode", new { inode }, t);
            c.Execute("DELETE FROM inodes WHERE id = @inode", new { inode }, t);
            return 0;
        });
        unreferenced = freed;
        return status;
    }

    public IReadOnlyList<long> OrphanInodes() => Read(c => c.Query<long>(
        "SELECT id FROM inodes WHERE nlink = 0 AND NOT EXISTS (SELECT 1 FROM opens WHERE opens.inode = inodes.id)").AsList());

    private List<BlockRef> SelectBlocks(DbConnection c, DbTransaction? t, long inode) =>
        c.Query<BlockRef>($"SELECT idx AS \"Index\", cap AS Cap, length AS Length FROM blocks WHERE inode = @inode ORDER BY idx{(t is null ? "" : _forUpdate)}", new { inode }, t).AsList();

    private void AddReference(DbConnection c, DbTransaction t, string cap, long length) =>
        c.Execute(_dialect.Upsert("contents", "cap, refs, length", "@cap, 1, @length", "cap", "refs = refs + 1"), new { cap, length }, t);

    private static void DropReference(DbConnection c, DbTransaction t, string cap, List<string> freed)
    {
        c.Execute("UPDATE contents SET refs = refs - 1 WHERE cap = @cap", new { cap }, t);
        if (c.Execute("DELETE FROM contents WHERE cap = @cap AND refs <= 0", new { cap }, t) > 0) freed.Add(cap);
    }
}
