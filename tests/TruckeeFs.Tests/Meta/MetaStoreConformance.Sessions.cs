using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>Sessions, open references and locks, on every engine.</summary>
public abstract partial class MetaStoreConformance
{
    private const long Everything = long.MaxValue;

    [Fact]
    public void Sessions_register_heartbeat_and_leave_with_their_locks_and_open_references()
    {
        var first = Store.OpenSession(new SessionInfo("host-a", 100, "/mnt/a", Tick(), "liveness a"));
        var second = Store.OpenSession(new SessionInfo("host-b", 200, "/mnt/\u00e9", Tick(), "liveness b"));
        Assert.NotEqual(first, second);
        var now = Tick();
        Assert.True(Store.Heartbeat(first, now));
        var sessions = Store.Sessions();
        Assert.Equal([first, second], sessions.Select(s => s.Id));
        Assert.Equal(("host-a", 100L, "/mnt/a", now, "liveness a"), (sessions[0].Host, sessions[0].Pid, sessions[0].Mountpoint, sessions[0].Heartbeat, sessions[0].Liveness));
        Assert.Equal("/mnt/\u00e9", sessions[1].Mountpoint);

        var file = NewFile("f");
        var locked = NewFile("l");
        Assert.NotNull(Store.AddOpen(file, first).Row);
        Assert.Equal(0, Store.SetLock(Posix(locked, first, 1, FileLockType.Write, 0, 9), out _));

        Assert.True(Store.RemoveSession(first, out var released));
        Assert.Equal([file, locked], released.Order());
        Assert.False(Store.Heartbeat(first, Tick()));
        Assert.False(Store.RemoveSession(first, out _));
        Assert.Null(Store.TestLock(Posix(locked, second, 1, FileLockType.Write, 0, Everything)));
        Assert.Equal([second], Store.Sessions().Select(s => s.Id));
    }

    [Fact]
    public void An_open_reference_keeps_a_nameless_inode_until_it_is_removed()
    {
        var session = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        var file = NewFile("open");
        Assert.NotNull(Store.AddOpen(file, session).Row);
        Assert.NotNull(Store.AddOpen(file, session).Row);
        Assert.Equal(0, Store.Unlink(Root, N("open"), Tick(), out _));

        Assert.Equal(Errno.EBUSY, Store.DeleteInode(file, out _));
        Assert.DoesNotContain(file, Store.OrphanInodes());
        Assert.Equal([file], Store.RemoveOpens([file], session));
        Assert.Contains(file, Store.OrphanInodes());
        Assert.Equal(0, Store.DeleteInode(file, out _));
        Assert.Null(Store.AddOpen(file, session).Row);
    }

    [Fact]
    public void An_open_reference_comes_with_the_row_and_block_map_and_is_recorded_for_regular_files_only()
    {
        var session = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        var file = NewFile("mapped");
        Assert.Equal(0, Store.CommitContent(file, new ContentCommit([new BlockRef(0, "CAP-0", 10), new BlockRef(2, "CAP-2", 4)], 20, Tick(), Tick()), out var committed, out _));
        var (row, blocks) = Store.AddOpen(file, session);
        Assert.Equal((committed!.Version, 20L), (row!.Version, row.Size));
        Assert.Equal([(0L, "CAP-0", 10L), (2L, "CAP-2", 4L)], blocks.Select(b => (b.Index, b.Cap, b.Length)));

        // A directory is read, and nothing is recorded: it cannot be opened as a file.
        Assert.Equal(0, Store.Create(Root, N("dir"), new NewNode(DirMode, 0, 0), Tick(), out var dir));
        var (directory, none) = Store.AddOpen(dir.Id, session);
        Assert.True(directory!.IsDirectory);
        Assert.Empty(none);

        // The session's references, as its removal releases them.
        Assert.True(Store.RemoveSession(session, out var released));
        Assert.Equal([file], released);
    }

    [Fact]
    public void An_open_reference_and_the_deletion_of_a_nameless_inode_never_both_succeed()
    {
        var session = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        for (var round = 0; round < 30; round++)
        {
            var name = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"race{round}");
            var file = NewFile(name);
            Assert.Equal(0, Store.Unlink(Root, N(name), Tick(), out _));
            int opened = -1, deleted = -1;
            Parallel.Invoke(() => opened = Store.AddOpen(file, session).Row is null ? Errno.ENOENT : 0, () => deleted = Store.DeleteInode(file, out _));

            // Either the reference came first and kept the inode, or the deletion did and the
            // reference found nothing to refer to.
            Assert.True((opened, deleted) is (0, Errno.EBUSY) or (Errno.ENOENT, 0), $"round {round}: open {opened}, delete {deleted}");
            Assert.Equal(opened == 0, Store.GetInode(file) is not null);
            if (opened == 0) Assert.Equal([file], Store.RemoveOpens([file], session));
        }
    }

    [Fact]
    public void A_sessions_references_go_together_and_the_nameless_among_them_are_reported()
    {
        var mine = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        var theirs = Store.OpenSession(new SessionInfo("h", 2, "/m", Tick(), ""));
        // More than one batch of statements holds.
        var files = Enumerable.Range(0, 600).Select(i => NewFile(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"f{i}"))).ToList();
        foreach (var file in files) Assert.NotNull(Store.AddOpen(file, mine).Row);
        Assert.NotNull(Store.AddOpen(files[0], theirs).Row);
        Assert.Equal(0, Store.Unlink(Root, N("f1"), Tick(), out _));
        Assert.Equal(0, Store.Unlink(Root, N("f599"), Tick(), out _));
        Assert.Equal(0, Store.Unlink(Root, N("f0"), Tick(), out _));

        Assert.Empty(Store.RemoveOpens([], mine));
        Assert.Equal([files[0], files[1], files[599]], Store.RemoveOpens(files, mine).Order());

        // Only the other session's reference is left: it keeps its file from being an orphan.
        Assert.Equal([files[1], files[599]], Store.OrphanInodes().Order());
        Assert.True(Store.RemoveSession(theirs, out var released));
        Assert.Equal([files[0]], released);
    }

    [Fact]
    public void An_unlink_deletes_the_inode_only_if_no_other_session_has_it_open()
    {
        var mine = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        var theirs = Store.OpenSession(new SessionInfo("h", 2, "/m", Tick(), ""));
        var shared = NewFile("shared");
        var closedHere = NewFile("closed-here");
        Assert.NotNull(Store.AddOpen(shared, theirs).Row);
        Assert.NotNull(Store.AddOpen(closedHere, mine).Row);

        Assert.Equal(0, Store.Unlink(Root, N("shared"), Tick(), new Reclaim(shared, mine), out var unlinked, out _, out var freed));
        Assert.Equal(0, unlinked!.Nlink);
        Assert.Null(freed);
        Assert.Equal(Errno.EBUSY, Store.DeleteInode(shared, out _));

        // The caller's own reference is of a file it closed: it goes with the inode.
        Assert.Equal(0, Store.Unlink(Root, N("closed-here"), Tick(), new Reclaim(closedHere, mine), out _, out _, out freed));
        Assert.NotNull(freed);
        Assert.Null(Store.GetInode(closedHere));
        Assert.True(Store.RemoveSession(mine, out var released));
        Assert.Empty(released);
        Assert.Null(Store.AddOpen(closedHere, theirs).Row);
    }

    [Fact]
    public void A_create_for_a_session_records_its_open_reference_in_the_same_transaction()
    {
        var session = Store.OpenSession(new SessionInfo("h", 1, "/m", Tick(), ""));
        Assert.Equal(0, Store.Create(Root, N("made-open"), new NewNode(FileModes.Regular | 0x1A4, 0, 0), Tick(), out var created, openedBy: session));
        Assert.Equal(0, Store.Unlink(Root, N("made-open"), Tick(), out _));

        Assert.Equal(Errno.EBUSY, Store.DeleteInode(created.Id, out _));
        Assert.True(Store.RemoveSession(session, out var released));
        Assert.Equal([created.Id], released);
        Assert.Equal(0, Store.DeleteInode(created.Id, out _));

        // A create that fails records nothing.
        var other = Store.OpenSession(new SessionInfo("h", 2, "/m", Tick(), ""));
        Assert.Equal(0, Store.Create(Root, N("taken"), new NewNode(FileModes.Regular | 0x1A4, 0, 0), Tick(), out _));
        Assert.Equal(Errno.EEXIST, Store.Create(Root, N("taken"), new NewNode(FileModes.Regular | 0x1A4, 0, 0), Tick(), out _, openedBy: other));
        Assert.True(Store.RemoveSession(other, out var none));
        Assert.Empty(none);
    }

    [Fact]
    public void Posix_locks_of_one_owner_split_merge_and_conflict_only_with_other_owners()
    {
        var file = NewFile("ranges");
        const long Mine = 1, Theirs = 2;
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Read, 0, 9), out _));
        // Touching and of the same type: one lock 0..19.
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Read, 10, 19), out _));
        Assert.Equal((0L, 19L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Write, 0, Everything))));
        // The same owner never conflicts with itself; another owner's read lock coexists with it.
        Assert.Null(Store.TestLock(Posix(file, 1, Mine, FileLockType.Write, 0, Everything)));
        Assert.Null(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Read, 0, Everything)));

        // A write lock in the middle splits the read lock in three: 0..4 read, 5..9 write, 10..19 read.
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Write, 5, 9), out _));
        Assert.Null(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Read, 0, 4)));
        Assert.Equal((5L, 9L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Read, 0, 19))));
        Assert.Equal((10L, 19L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Write, 10, 30))));

        // Another owner's conflicting request fails with the conflict; an unlock splits what remains.
        Assert.Equal(Errno.EAGAIN, Store.SetLock(Posix(file, 1, Theirs, FileLockType.Write, 15, Everything), out var conflict));
        Assert.Equal((FileLockType.Read, 10L, 19L), (conflict!.Type, conflict.First, conflict.Last));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Unlock, 12, 16), out _));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Theirs, FileLockType.Write, 12, 16), out _));
        Assert.Equal((17L, 19L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Write, 17, 17))));

        // The same owner in another session (another host) is another owner.
        Assert.Equal(Errno.EAGAIN, Store.SetLock(Posix(file, 2, Mine, FileLockType.Write, 0, 0), out _));

        Assert.Equal(4, Store.ReleaseLocks(file, 1, Mine, flock: false));
        Assert.Null(Store.TestLock(Posix(file, 2, Mine, FileLockType.Write, 0, 11)));
    }

    [Fact]
    public void One_request_can_replace_more_locks_than_a_batch_holds_statements()
    {
        // Every other byte: locks that neither touch nor merge. The whole-file write lock then
        // replaces all of them at once, and the unlock that follows splits it around one byte.
        var file = NewFile("many-ranges");
        const int Locks = SqlBatch.MaxStatements + 44;
        for (var i = 0; i < Locks; i++) Assert.Equal(0, Store.SetLock(Posix(file, 1, 1, FileLockType.Read, 2L * i, 2L * i), out _));
        Assert.Equal((2L * (Locks - 1), 2L * (Locks - 1)), Range(Store.TestLock(Posix(file, 1, 2, FileLockType.Write, 2L * Locks - 3, Everything))));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, 1, FileLockType.Write, 0, Everything), out _));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, 1, FileLockType.Unlock, 100, 100), out _));
        Assert.Null(Store.TestLock(Posix(file, 1, 2, FileLockType.Write, 100, 100)));
        Assert.Equal((101L, Everything), Range(Store.TestLock(Posix(file, 1, 2, FileLockType.Read, 101, 101))));
        Assert.Equal(2, Store.ReleaseLocks(file, 1, 1, flock: false));
    }

    [Fact]
    public void A_request_among_many_locks_finds_those_that_touch_it_on_either_side()
    {
        // A request reads only the locks near its bytes: the neighbours it merges with, one byte
        // away on either side, and the conflicts at its very ends must all be among them.
        var file = NewFile("neighbours");
        const long Mine = 1, Theirs = 2;
        for (var i = 0; i < 200; i++) Assert.Equal(0, Store.SetLock(Posix(file, 1, Theirs, FileLockType.Read, 1000L * i + 500, 1000L * i + 500), out _));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Write, 110, 119), out _));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Write, 100, 109), out _)); // touches on its right
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Write, 120, 129), out _)); // touches on its left
        Assert.Equal((100L, 129L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Read, 0, 100))));
        Assert.Equal((100L, 129L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Read, 129, 129))));
        Assert.Null(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Write, 130, 499)));
        // Conflicts exactly at a request's first and last bytes.
        Assert.Equal(Errno.EAGAIN, Store.SetLock(Posix(file, 1, Mine, FileLockType.Write, 1500, 1600), out var atFirst));
        Assert.Equal((1500L, 1500L), (atFirst!.First, atFirst.Last));
        Assert.Equal(Errno.EAGAIN, Store.SetLock(Posix(file, 1, Mine, FileLockType.Write, 1400, 1500), out var atLast));
        Assert.Equal((1500L, 1500L), (atLast!.First, atLast.Last));
        // To the end of the file, and a lock of the last byte there is that touches it.
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Read, Everything, Everything), out _));
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Read, 300_000, Everything - 1), out _));
        Assert.Equal((300_000L, Everything), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Write, Everything, Everything))));
        // An unlock of a range that only touches a lock leaves it whole.
        Assert.Equal(0, Store.SetLock(Posix(file, 1, Mine, FileLockType.Unlock, 130, 140), out _));
        Assert.Equal((100L, 129L), Range(Store.TestLock(Posix(file, 1, Theirs, FileLockType.Write, 0, 299_999))));
        Assert.Equal(2, Store.ReleaseLocks(file, 1, Mine, flock: false));
    }

    [Fact]
    public void A_flock_owner_holds_one_whole_file_lock_that_a_new_request_replaces()
    {
        var file = NewFile("flocked");
        Assert.Equal(0, Store.SetLock(Flock(file, 1, FileLockType.Read), out _));
        Assert.Equal(0, Store.SetLock(Flock(file, 2, FileLockType.Read), out _));
        Assert.Equal(Errno.EAGAIN, Store.SetLock(Flock(file, 2, FileLockType.Write), out _));
        Assert.Equal(0, Store.SetLock(Flock(file, 1, FileLockType.Unlock), out _));
        Assert.Equal(0, Store.SetLock(Flock(file, 2, FileLockType.Write), out _));
        Assert.Equal(Errno.EAGAIN, Store.SetLock(Flock(file, 1, FileLockType.Read), out _));
        // flock and fcntl locks are independent, as on Linux.
        Assert.Null(Store.TestLock(Posix(file, 1, 1, FileLockType.Write, 0, Everything)));
        Assert.Equal(1, Store.ReleaseLocks(file, 1, 2, flock: true));
        Assert.Equal(0, Store.SetLock(Flock(file, 1, FileLockType.Write), out _));
    }

    private long NewFile(string name)
    {
        Assert.Equal(0, Store.Create(Root, N(name), new NewNode(FileMode, 0, 0), Tick(), out var created));
        return created.Id;
    }

    private static FileLockRequest Posix(long inode, long session, long owner, FileLockType type, long first, long last) =>
        new(inode, session, owner, 42, false, type, first, last);

    private static FileLockRequest Flock(long inode, long owner, FileLockType type) =>
        new(inode, 1, owner, 42, true, type, 0, long.MaxValue);

    private static (long First, long Last) Range(FileLockRecord? record) => (record!.First, record.Last);
}
