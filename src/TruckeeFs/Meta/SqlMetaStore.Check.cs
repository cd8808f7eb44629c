using Dapper;

namespace TruckeeFs.Meta;

/// <summary>
/// The queries and repairs of <c>truckeefs selftest</c>, <c>status</c>, <c>fsck</c> and
/// <c>gc</c>. Checks are whole-table queries (joins and groupings the database does well);
/// repairs are one transaction each that re-checks the finding first.
/// </summary>
public sealed partial class SqlMetaStore
{
    private const string ProbePrefix = "PROBE:";

    // The expected link count: a directory has "." and its name in its parent (2) plus each
    // subdirectory's ".."; anything else one per name.
    private const string ExpectedLinks =
        "CASE WHEN (i.mode & 61440) = 16384 " +
        "THEN 2 + (SELECT COUNT(*) FROM dirents s JOIN inodes si ON si.id = s.inode WHERE s.parent = i.id AND (si.mode & 61440) = 16384) " +
        "ELSE (SELECT COUNT(*) FROM dirents n WHERE n.inode = i.id) END";

    public void ProbeRoundTrip()
    {
        // A contents row no block uses, under a cap no store makes: invisible to everything else.
        var cap = ProbePrefix + Guid.NewGuid().ToString("N");
        Write((c, t) =>
        {
            c.Execute("INSERT INTO contents (cap, refs, length) VALUES (@cap, 0, 7)", new { cap }, t);
            return 0;
        });
        var length = Read(c => c.ExecuteScalar<long?>("SELECT length FROM contents WHERE cap = @cap", new { cap }));
        var deleted = Write((c, t) => c.Execute("DELETE FROM contents WHERE cap = @cap", new { cap }, t) == 1 ? 0 : Errno.ENOENT);
        if (length != 7 || deleted != 0)
            throw new MetaStoreException($"metadata database ({Description}): a probe row written was {(length is null ? "not found" : "read back wrong")} or not deleted");
    }

    public IReadOnlyList<DirentRecord> DanglingEntries() => Read(c => c.Query<DirentRow>(
        "SELECT d.id, d.parent, d.name, d.inode FROM dirents d " +
        "LEFT JOIN inodes i ON i.id = d.inode LEFT JOIN inodes p ON p.id = d.parent " +
        "WHERE i.id IS NULL OR p.id IS NULL OR (p.mode & 61440) <> 16384 ORDER BY d.id")
        .Select(r => new DirentRecord(r.Id, r.Parent, r.Name, r.Inode)).ToList());

    public IReadOnlyList<long> LostInodes() => Read(c => c.Query<long>(
        "SELECT i.id FROM inodes i WHERE i.id <> @RootInode AND i.nlink > 0 AND NOT EXISTS (SELECT 1 FROM dirents d WHERE d.inode = i.id) ORDER BY i.id",
        new { Schema.RootInode }).AsList());

    public IReadOnlyList<LinkCountRecord> LinkCountMismatches() => Read(c => c.Query<LinkCountRow>(
        $"SELECT id, mode, nlink, expected FROM (SELECT i.id, i.mode, i.nlink, {ExpectedLinks} AS expected FROM inodes i " +
        "WHERE i.id = @RootInode OR EXISTS (SELECT 1 FROM dirents d WHERE d.inode = i.id)) x WHERE nlink <> expected ORDER BY id",
        new { Schema.RootInode }).Select(r => new LinkCountRecord(r.Id, r.Mode, r.Nlink, r.Expected)).ToList());

    public IReadOnlyList<long> StrayRowInodes() => Read(c => c.Query<long>(
        "SELECT inode FROM (SELECT inode FROM blocks UNION SELECT inode FROM xattrs) x " +
        "WHERE NOT EXISTS (SELECT 1 FROM inodes i WHERE i.id = x.inode) ORDER BY inode").AsList());

    public IReadOnlyList<CapUse> CapUses() => Read(c => c.Query<CapUseRow>(
        "SELECT cap, MAX(length) AS length, SUM(recorded) AS recorded, SUM(refs) AS refs, SUM(uses) AS uses FROM (" +
        "SELECT cap, length, 1 AS recorded, refs, 0 AS uses FROM contents UNION ALL " +
        "SELECT cap, length, 0 AS recorded, 0 AS refs, 1 AS uses FROM blocks) x GROUP BY cap ORDER BY cap")
        .Select(r => new CapUse(r.Cap, r.Length, r.Recorded > 0 ? r.Refs : null, r.Uses)).ToList());

    public IReadOnlyList<(long Inode, long Index)> BlocksUsing(string cap) => Read(c => c.Query<(long, long)>(
        "SELECT inode, idx FROM blocks WHERE cap = @cap ORDER BY inode, idx", new { cap }).AsList());

    public bool RemoveDanglingEntry(long id) => Write((c, t) =>
    {
        var dangling = c.ExecuteScalar<long>(
            "SELECT COUNT(*) FROM dirents d LEFT JOIN inodes i ON i.id = d.inode LEFT JOIN inodes p ON p.id = d.parent " +
            "WHERE d.id = @id AND (i.id IS NULL OR p.id IS NULL OR (p.mode & 61440) <> 16384)", new { id }, t);
        if (dangling == 0) return Errno.ENOENT;
        c.Execute("DELETE FROM dirents WHERE id = @id", new { id }, t);
        return 0;
    }) == 0;

    public bool AdoptLostInode(long inode, long directory, byte[] name) => Write((c, t) =>
    {
        var row = SelectInode(c, t, inode);
        if (row is null || row.Nlink == 0 || c.ExecuteScalar<long>("SELECT COUNT(*) FROM dirents WHERE inode = @inode", new { inode }, t) > 0)
            return Errno.ENOENT;
        var status = CheckDirectory(c, t, directory, out _);
        if (status != 0) return status;
        if (FindEntry(c, t, directory, name) is not null) return Errno.EEXIST;
        InsertEntry(c, t, directory, name, inode);
        return 0;
    }) == 0;

    public long? FixLinkCount(long inode)
    {
        long? fixedTo = null;
        Write((c, t) =>
        {
            fixedTo = null;
            var row = c.QuerySingleOrDefault<LinkCountRow>(
                $"SELECT i.id, i.mode, i.nlink, {ExpectedLinks} AS expected FROM inodes i WHERE i.id = @inode{_forUpdate}", new { inode }, t);
            if (row is null || row.Nlink == row.Expected) return Errno.ENOENT;
            c.Execute("UPDATE inodes SET nlink = @Expected WHERE id = @Id", row, t);
            fixedTo = row.Expected;
            return 0;
        });
        return fixedTo;
    }

    public int RemoveStrayRows(long inode)
    {
        var removed = 0;
        Write((c, t) =>
        {
            removed = 0;
            if (SelectInode(c, t, inode) is not null) return Errno.EEXIST;
            removed = c.Execute("DELETE FROM blocks WHERE inode = @inode", new { inode }, t)
                + c.Execute("DELETE FROM xattrs WHERE inode = @inode", new { inode }, t);
            return 0;
        });
        return removed;
    }

    public bool FixReferenceCount(string cap)
    {
        var unreferenced = false;
        Write((c, t) =>
        {
            unreferenced = false;
            var uses = c.QuerySingle<UsesRow>("SELECT COUNT(*) AS uses, COALESCE(MAX(length), 0) AS length FROM blocks WHERE cap = @cap", new { cap }, t);
            var refs = c.ExecuteScalar<long?>($"SELECT refs FROM contents WHERE cap = @cap{_forUpdate}", new { cap }, t);
            if (uses.Uses == 0)
            {
                unreferenced = refs is not null && c.Execute("DELETE FROM contents WHERE cap = @cap", new { cap }, t) > 0;
                return unreferenced ? 0 : Errno.ENOENT;
            }
            if (refs == uses.Uses) return Errno.ENOENT;
            c.Execute(_dialect.Upsert("contents", "cap, refs, length", "@cap, @Uses, @Length", "cap", "refs = @Uses"),
                new { cap, uses.Uses, uses.Length }, t);
            return 0;
        });
        return unreferenced;
    }

    public IReadOnlyList<(long Inode, long Index)> PunchBlocksUsing(string cap)
    {
        List<(long, long)> punched = [];
        Write((c, t) =>
        {
            punched = c.Query<(long, long)>($"SELECT inode, idx FROM blocks WHERE cap = @cap ORDER BY inode, idx{_forUpdate}", new { cap }, t).AsList();
            c.Execute("DELETE FROM blocks WHERE cap = @cap", new { cap }, t);
            c.Execute("DELETE FROM contents WHERE cap = @cap", new { cap }, t);
            // A file whose blocks changed has new contents: readers holding the old version re-read.
            foreach (var inode in punched.Select(p => p.Item1).Distinct())
                c.Execute("UPDATE inodes SET version = version + 1, allocated = (SELECT COALESCE(SUM(length), 0) FROM blocks WHERE inode = @inode) WHERE id = @inode", new { inode }, t);
            return 0;
        });
        return punched;
    }

    private sealed class LinkCountRow
    {
        public long Id { get; set; }
        public long Mode { get; set; }
        public long Nlink { get; set; }
        public long Expected { get; set; }
    }

    private sealed class CapUseRow
    {
        public string Cap { get; set; } = "";
        public long Length { get; set; }
        public long Recorded { get; set; }
        public long Refs { get; set; }
        public long Uses { get; set; }
    }

    private sealed class UsesRow
    {
        public long Uses { get; set; }
        public long Length { get; set; }
    }
}
