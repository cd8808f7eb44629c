using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// Creates given the directory's row as the mount knew it: trusted while the directory's ctime
/// is still the known one, and ignored (the store reads the directory itself) once it is not.
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
}
