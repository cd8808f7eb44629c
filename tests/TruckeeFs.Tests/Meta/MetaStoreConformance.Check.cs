using System.Globalization;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>The check and repair members fsck, gc, status and the self-test use, on every dialect.</summary>
public abstract partial class MetaStoreConformance
{
    [Fact]
    public void The_probe_round_trip_leaves_nothing_behind()
    {
        Store.ProbeRoundTrip();
        Store.ProbeRoundTrip();
        Assert.Empty(Store.CapUses());
        CloseStore();
        Assert.Equal(0L, Count("SELECT COUNT(*) FROM contents"));
    }

    [Fact]
    public void Sessions_lists_rows_written_by_any_host_with_their_mount_point()
    {
        Assert.Empty(Store.Sessions());
        CloseStore();
        // Names and mount points are bytes: hex literals store them as such on every engine.
        ExecuteDirectly("INSERT INTO sessions (host, pid, mountpoint, started, heartbeat) VALUES ('h1', 12, X'70617468', 5, 7)");
        var session = Assert.Single(Store.Sessions());
        Assert.Equal(("h1", 12L, 5L, 7L), (session.Host, session.Pid, session.Started, session.Heartbeat));
        Assert.Equal("path", session.Mountpoint);
    }

    [Fact]
    public void A_consistent_filesystem_has_no_findings()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir));
        Assert.Equal(0, Store.Create(dir.Id, N("sub"), new NewNode(DirMode, 0, 0), Tick(), out _));
        Assert.Equal(0, Store.Create(dir.Id, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file));
        Assert.Equal(0, Store.Link(file.Id, Root, N("hard"), Tick(), out _));
        Assert.Equal(0, Store.CommitContent(file.Id, new ContentCommit([new BlockRef(0, "CAP-A", 10), new BlockRef(1, "CAP-A", 10)], 20, Tick(), Tick()), out _, out _));
        Assert.Empty(Store.DanglingEntries());
        Assert.Empty(Store.LostInodes());
        Assert.Empty(Store.LinkCountMismatches());
        Assert.Empty(Store.StrayRowInodes());
        var use = Assert.Single(Store.CapUses());
        Assert.Equal(new CapUse("CAP-A", 10, 2, 2), use);
    }

    [Fact]
    public void Damaged_names_and_link_counts_are_found_and_each_repair_rechecks_before_it_acts()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir));
        Assert.Equal(0, Store.Create(dir.Id, N("sub"), new NewNode(DirMode, 0, 0), Tick(), out var sub));
        Assert.Equal(0, Store.Create(dir.Id, N("lost"), new NewNode(FileMode, 0, 0), Tick(), out var lost));
        Assert.Equal(0, Store.Create(Root, N("g"), new NewNode(FileMode, 0, 0), Tick(), out var file));
        CloseStore();
        ExecuteDirectly(Invariant($"UPDATE inodes SET nlink = 9 WHERE id = {dir.Id}"));
        ExecuteDirectly(Invariant($"UPDATE inodes SET nlink = 4 WHERE id = {file.Id}"));
        ExecuteDirectly(Invariant($"DELETE FROM dirents WHERE inode = {lost.Id}"));
        ExecuteDirectly("INSERT INTO dirents (parent, name, inode) VALUES (1, X'67686f7374', 99999)");
        // A name inside a file, which is no directory.
        ExecuteDirectly(Invariant($"INSERT INTO dirents (parent, name, inode) VALUES ({file.Id}, X'696e73696465', {sub.Id})"));
        ExecuteDirectly("INSERT INTO xattrs (inode, name, value) VALUES (88888, X'75', X'76')");

        var dangling = Store.DanglingEntries();
        Assert.Equal([N("ghost"), N("inside")], dangling.Select(d => d.Name));
        Assert.Equal([lost.Id], Store.LostInodes());
        // A directory counts its subdirectories (sub); a file its names ("g"); sub's stray second name is no link.
        Assert.Equal([(dir.Id, 9L, 3L), (file.Id, 4L, 1L)], Store.LinkCountMismatches().Select(m => (m.Inode, m.Nlink, m.Expected)));
        Assert.Equal([88888L], Store.StrayRowInodes());

        foreach (var entry in dangling) Assert.True(Store.RemoveDanglingEntry(entry.Id));
        Assert.False(Store.RemoveDanglingEntry(dangling[0].Id));
        Assert.Empty(Store.DanglingEntries());
        Assert.False(Store.AdoptLostInode(file.Id, Root, N("not-lost")));
        Assert.True(Store.AdoptLostInode(lost.Id, dir.Id, N("found")));
        Assert.False(Store.AdoptLostInode(lost.Id, dir.Id, N("again")));
        Assert.Equal(lost.Id, Store.Lookup(dir.Id, N("found"))!.Id);
        Assert.Equal(3L, Store.FixLinkCount(dir.Id));
        Assert.Equal(1L, Store.FixLinkCount(file.Id));
        Assert.Null(Store.FixLinkCount(file.Id));
        Assert.Empty(Store.LinkCountMismatches());
        Assert.Equal(0, Store.RemoveStrayRows(file.Id));
        Assert.Equal(1, Store.RemoveStrayRows(88888));
        Assert.Empty(Store.StrayRowInodes());
    }

    [Fact]
    public void Reference_counts_are_recounted_and_lost_caps_punched_into_holes()
    {
        Assert.Equal(0, Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file));
        Assert.Equal(0, Store.CommitContent(file.Id, new ContentCommit(
            [new BlockRef(0, "CAP-A", 10), new BlockRef(1, "CAP-B", 10), new BlockRef(2, "CAP-B", 10)], 30, Tick(), Tick()), out var committed, out _));
        CloseStore();
        ExecuteDirectly("UPDATE contents SET refs = 5 WHERE cap = 'CAP-A'");
        ExecuteDirectly("DELETE FROM contents WHERE cap = 'CAP-B'");
        ExecuteDirectly("INSERT INTO contents (cap, refs, length) VALUES ('CAP-UNUSED', 1, 3)");

        Assert.Equal(
            [new CapUse("CAP-A", 10, 5, 1), new CapUse("CAP-B", 10, null, 2), new CapUse("CAP-UNUSED", 3, 1, 0)],
            Store.CapUses());
        Assert.False(Store.FixReferenceCount("CAP-A"));
        Assert.False(Store.FixReferenceCount("CAP-B"));
        Assert.True(Store.FixReferenceCount("CAP-UNUSED"));
        Assert.False(Store.FixReferenceCount("CAP-UNUSED"));
        Assert.Equal([new CapUse("CAP-A", 10, 1, 1), new CapUse("CAP-B", 10, 2, 2)], Store.CapUses());

        Assert.Equal([(file.Id, 1L), (file.Id, 2L)], Store.PunchBlocksUsing("CAP-B"));
        Assert.Equal([new BlockRef(0, "CAP-A", 10)], Store.GetBlocks(file.Id));
        Assert.True(Store.IsUnreferenced("CAP-B"));
        Assert.Equal(committed.Version + 1, Store.GetInode(file.Id)!.Version);
        Assert.Equal(30, Store.GetInode(file.Id)!.Size);
    }

    private void CloseStore()
    {
        _store?.Dispose();
        _store = null;
    }

    private long Count(string sql) => Convert.ToInt64(ExecuteDirectly(sql), CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
