using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// Writes that trust what the mount knows instead of reading first: a create given the
/// directory's row (trusted while the directory's ctime is still the known one), and the first
/// version of a file (while its row is still at version 0). When the database says otherwise
/// the store reads first, and the result is the same.
/// </summary>
public abstract partial class MetaStoreConformance
{
    private const long SetGid = 0x400;

    [Fact]
    public void A_create_trusts_a_known_directory_row_whose_ctime_is_current()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 5), Tick(), out var dir));
        // The row says set-group-ID with group 77, which the database does not: only a create that
        // took the row on trust gives the new file group 77.
        var known = dir.Clone();
        known.Mode |= SetGid;
        known.Gid = 77;
        var now = Tick();

        Assert.Equal(0, Store.Create(dir.Id, N("f"), new NewNode(FileMode, 1, 2), now, out var created, out var directory, out var ctimeFound, 0, known));

        Assert.Equal(77, created.Gid);
        Assert.Equal(created.Id, Store.Lookup(dir.Id, N("f"))!.Id);
        Assert.Equal(dir.Ctime, ctimeFound);
        Assert.Equal(now, directory.Ctime);
        Assert.Equal(now, directory.Mtime);
        var stored = Store.GetInode(dir.Id)!;
        Assert.Equal((stored.Ctime, stored.Mtime, stored.Nlink), (directory.Ctime, directory.Mtime, directory.Nlink));
    }

    [Fact]
    public void A_create_reads_the_directory_itself_once_its_ctime_moved_on()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 5), Tick(), out var stale));
        // Another mount makes the directory set-group-ID meanwhile; the known row does not say so.
        Assert.Equal(0, Store.SetAttributes(stale.Id, new AttributeChange { Mode = 0x1ED | SetGid }, Tick(), out var current));

        Assert.Equal(0, Store.Create(stale.Id, N("sub"), new NewNode(DirMode, 1, 2), Tick(), out var created, out var directory, out var ctimeFound, 0, stale));

        Assert.Equal(5, created.Gid);
        Assert.Equal(SetGid, created.Mode & SetGid);
        Assert.Equal(current.Ctime, ctimeFound);
        Assert.Equal(3, directory.Nlink);
        Assert.Equal(3, Store.GetInode(stale.Id)!.Nlink);
    }

    [Fact]
    public void A_create_with_a_known_directory_row_still_refuses_a_taken_name_and_a_removed_directory()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir));
        Assert.Equal(0, Store.Create(dir.Id, N("taken"), new NewNode(FileMode, 0, 0), Tick(), out _, out var known, out _));
        var inodes = Store.Usage().Inodes;

        // The known row is current, so only the name's uniqueness stops this one.
        Assert.Equal(Errno.EEXIST, Store.Create(dir.Id, N("taken"), new NewNode(FileMode, 0, 0), Tick(), out _, out _, out _, 0, known.Clone()));
        Assert.Equal(Errno.EEXIST, Store.Create(dir.Id, N("taken"), new NewNode(DirMode, 0, 0), Tick(), out _, out _, out _, 0, known.Clone()));
        Assert.Equal(inodes, Store.Usage().Inodes);
        var unchanged = Store.GetInode(dir.Id)!;
        Assert.Equal((known.Ctime, known.Nlink), (unchanged.Ctime, unchanged.Nlink));

        Assert.Equal(0, Store.Unlink(dir.Id, N("taken"), Tick(), out _));
        Assert.Equal(0, Store.RemoveDirectory(Root, N("d"), Tick(), out _));
        Assert.Equal(Errno.ENOENT, Store.Create(dir.Id, N("late"), new NewNode(FileMode, 0, 0), Tick(), out _, out _, out _, 0, known.Clone()));
        Assert.Null(Store.Lookup(dir.Id, N("late")));
    }

    [Fact]
    public void A_create_with_a_known_directory_row_records_the_open_of_its_session()
    {
        var session = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        var root = Store.GetInode(Root)!;

        Assert.Equal(0, Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var created, out _, out _, session, root));

        // The session's open keeps it from being an orphan once its last name goes.
        Assert.Equal(0, Store.Unlink(Root, N("f"), Tick(), out _));
        Assert.DoesNotContain(created.Id, Store.OrphanInodes());
        Assert.Equal([created.Id], Store.RemoveOpens([created.Id], session));
        Assert.Contains(created.Id, Store.OrphanInodes());
    }

    [Fact]
    public void A_first_version_commits_exactly_as_a_commit_that_reads_first()
    {
        var trusted = NewFile("trusted");
        var read = NewFile("read");
        var change = new AttributeChange { Mode = 0x180, Uid = 7, Gid = 8, Atime = 42 };
        ContentCommit Version() => new([new BlockRef(0, "CAP-A", 10), new BlockRef(1, null, 0), new BlockRef(2, "CAP-B", 4)], 9000, 50, 51) { Attributes = change };

        Assert.Equal(0, Store.CommitContent(trusted, Version() with { IsFirst = true }, out var first, out var freed));
        Assert.Empty(freed);
        Assert.Equal(0, Store.CommitContent(read, Version(), out var other, out _));

        Assert.Equal(1, first.Version);
        Assert.Equal(FileModes.Regular | 0x180, first.Mode);
        Assert.Equal(Attributes(other), Attributes(first));
        Assert.Equal(Attributes(first), Attributes(Store.GetInode(trusted)!));
        Assert.Equal(Store.GetBlocks(read), Store.GetBlocks(trusted));
        // Both files reference each object: one going leaves it referenced.
        Assert.Equal(0, Store.Unlink(Root, N("read"), Tick(), out _));
        Assert.Equal(0, Store.DeleteInode(read, out var unreferenced));
        Assert.Empty(unreferenced);
        Assert.False(Store.IsUnreferenced("CAP-A"));
    }

    [Fact]
    public void A_first_version_claimed_of_a_file_already_committed_replaces_its_version_as_any_commit()
    {
        var file = NewFile("f");
        Assert.Equal(0, Store.CommitContent(file, new ContentCommit([new BlockRef(0, "CAP-OLD", 10)], 10, Tick(), Tick()), out _, out _));

        Assert.Equal(0, Store.CommitContent(file, new ContentCommit([new BlockRef(0, "CAP-NEW", 3)], 3, Tick(), Tick()) { IsFirst = true }, out var updated, out var freed));

        Assert.Equal(2, updated.Version);
        Assert.Equal(["CAP-OLD"], freed);
        Assert.Equal([new BlockRef(0, "CAP-NEW", 3)], Store.GetBlocks(file));
        Assert.Equal(Errno.ENOENT, Store.CommitContent(999_999, new ContentCommit([], 0, Tick(), Tick()) { IsFirst = true }, out _, out _));
    }

    /// <summary>Everything of a row but its id.</summary>
    private static object Attributes(Inode row) =>
        (row.Mode, row.Uid, row.Gid, row.Nlink, row.Size, row.Atime, row.Mtime, row.Ctime, row.Rdev, row.Version, row.Allocated);
}
