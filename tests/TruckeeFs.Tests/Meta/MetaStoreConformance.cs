using System.Text;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// What every metadata store must do, run against each SQL dialect. Each test gets a fresh,
/// empty filesystem from <see cref="CreateStore"/>.
/// </summary>
public abstract partial class MetaStoreConformance : IDisposable
{
    private const long Root = 1;
    private const long FileMode = FileModes.Regular | 0x1A4; // 0644
    private const long DirMode = FileModes.Directory | 0x1ED; // 0755
    private long _clock = 1_000_000_000;
    private IMetaStore? _store;

    /// <summary>Opens the test's database; each call opens the same one.</summary>
    protected abstract IMetaStore CreateStore(long now);

    /// <summary>Runs <paramref name="sql"/> on the test's database, bypassing the store (which must be closed); returns the first value, if any.</summary>
    protected abstract object? ExecuteDirectly(string sql);

    private IMetaStore Store => _store ??= CreateStore(Tick());

    public virtual void Dispose()
    {
        _store?.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void A_new_filesystem_has_a_root_directory_and_an_identity()
    {
        var root = Store.GetInode(Root);
        Assert.NotNull(root);
        Assert.True(root.IsDirectory);
        Assert.Equal(2, root.Nlink);
        Assert.False(string.IsNullOrEmpty(Store.FilesystemId));
        Assert.Equal(Root, Store.ParentOf(Root));
    }

    [Fact]
    public void Reopening_keeps_the_identity_and_does_not_migrate_twice()
    {
        string id;
        using (var first = CreateStore(Tick())) id = first.FilesystemId;
        using (var second = CreateStore(Tick()))
        {
            Assert.Equal(id, second.FilesystemId);
            Assert.NotNull(second.GetInode(Root));
        }
        Assert.Equal((long)Schema.LatestVersion, Convert.ToInt64(ExecuteDirectly("SELECT COUNT(*) FROM schema_version"), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_migration_interrupted_after_its_schema_changes_runs_again()
    {
        string id;
        using (var first = CreateStore(Tick())) id = first.FilesystemId;
        // As if the process died after creating tables and indexes (MySQL commits DDL at once) but before recording it.
        ExecuteDirectly("DELETE FROM schema_version");

        using (var second = CreateStore(Tick()))
        {
            Assert.Equal(id, second.FilesystemId);
            Assert.Equal(2, second.GetInode(Root)!.Nlink);
        }
        Assert.Equal((long)Schema.LatestVersion, Convert.ToInt64(ExecuteDirectly("SELECT COUNT(*) FROM schema_version"), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_database_from_a_newer_version_is_refused_and_the_refusal_holds_nothing()
    {
        using (CreateStore(Tick())) { }
        ExecuteDirectly("INSERT INTO schema_version (version) VALUES (99)");

        // The second refusal is the same: the first left no lock or connection behind.
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var error = Assert.Throws<MetaStoreException>(() => CreateStore(Tick()));
            Assert.Contains("schema version 99 is newer", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Create_then_lookup_and_creating_twice_is_EEXIST()
    {
        Assert.Equal(0, Store.Create(Root, N("a"), new NewNode(FileMode, 10, 20), Tick(), out var created));
        Assert.Equal(1, created.Nlink);
        Assert.Equal(10, created.Uid);
        Assert.Equal(20, created.Gid);
        Assert.Equal(created.Id, Store.Lookup(Root, N("a"))!.Id);
        Assert.Equal(Errno.EEXIST, Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out _));
        Assert.Null(Store.Lookup(Root, N("b")));
    }

    [Fact]
    public void Names_are_bytes_case_sensitive_and_any_encoding()
    {
        byte[][] names = [N("A"), N("a"), N("😀 four-byte"), [0xFF, 0xFE, 0x80], N(new string('x', 255))];
        foreach (var name in names) Assert.Equal(0, Store.Create(Root, name, new NewNode(FileMode, 0, 0), Tick(), out _));
        var listed = Store.ReadDirectory(Root, 0, 100).Select(e => e.Name).ToList();
        Assert.Equal(names.Length, listed.Count);
        foreach (var name in names)
        {
            Assert.Contains(listed, l => l.AsSpan().SequenceEqual(name));
            Assert.NotNull(Store.Lookup(Root, name));
        }
        Assert.NotEqual(Store.Lookup(Root, N("A"))!.Id, Store.Lookup(Root, N("a"))!.Id);
    }

    [Fact]
    public void Mkdir_counts_links_and_rmdir_refuses_a_non_empty_directory()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir));
        Assert.Equal(2, dir.Nlink);
        Assert.Equal(3, Store.GetInode(Root)!.Nlink);
        Assert.Equal(0, Store.Create(dir.Id, N("f"), new NewNode(FileMode, 0, 0), Tick(), out _));
        Assert.Equal(Errno.ENOTEMPTY, Store.RemoveDirectory(Root, N("d"), Tick(), out _));
        Assert.Equal(Errno.ENOTDIR, Store.RemoveDirectory(dir.Id, N("f"), Tick(), out _));
        Assert.Equal(Errno.EISDIR, Store.Unlink(Root, N("d"), Tick(), out _));
        Assert.Equal(0, Store.Unlink(dir.Id, N("f"), Tick(), out var unlinked));
        Assert.Equal(0, unlinked!.Nlink);
        Assert.Equal(0, Store.RemoveDirectory(Root, N("d"), Tick(), out var removed));
        Assert.Equal(0, removed!.Nlink);
        Assert.Equal(2, Store.GetInode(Root)!.Nlink);
        Assert.Equal(Errno.ENOENT, Store.Create(dir.Id, N("late"), new NewNode(FileMode, 0, 0), Tick(), out _));
    }

    [Fact]
    public void Creating_in_a_file_is_ENOTDIR()
    {
        Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        Assert.Equal(Errno.ENOTDIR, Store.Create(file.Id, N("x"), new NewNode(FileMode, 0, 0), Tick(), out _));
    }

    [Fact]
    public void Hard_links_count_and_directories_cannot_be_linked()
    {
        Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        var before = file.Ctime;
        Assert.Equal(0, Store.Link(file.Id, Root, N("g"), Tick(), out var linked));
        Assert.Equal(2, linked.Nlink);
        Assert.True(Store.GetInode(file.Id)!.Ctime > before);
        Assert.Equal(Errno.EEXIST, Store.Link(file.Id, Root, N("g"), Tick(), out _));
        Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir);
        Assert.Equal(Errno.EPERM, Store.Link(dir.Id, Root, N("d2"), Tick(), out _));
        Assert.Equal(0, Store.Unlink(Root, N("f"), Tick(), out var unlinked));
        Assert.Equal(1, unlinked!.Nlink);
        Assert.Equal(file.Id, Store.Lookup(Root, N("g"))!.Id);
    }

    [Fact]
    public void Entry_changes_move_the_parent_mtime_and_ctime()
    {
        var before = Store.GetInode(Root)!;
        Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out _);
        var after = Store.GetInode(Root)!;
        Assert.True(after.Mtime > before.Mtime);
        Assert.True(after.Ctime > before.Ctime);
    }

    [Fact]
    public void Entry_changes_report_the_directory_row_they_leave()
    {
        Assert.Equal(0, Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir, out var afterMkdir, out _));
        AssertCurrent(afterMkdir);
        Assert.Equal(0, Store.Create(dir.Id, N("f"), new NewNode(FileMode, 0, 0), Tick(), out _, out var afterCreate, out var ctimeFound));
        AssertCurrent(afterCreate);
        // The directory's ctime as the create found it: as its own creation left it.
        Assert.Equal(dir.Ctime, ctimeFound);
        Assert.Equal(0, Store.Create(dir.Id, N("g"), new NewNode(FileMode, 0, 0), Tick(), out _, out var afterSecond, out var secondFound));
        Assert.Equal(afterCreate.Ctime, secondFound);
        Assert.True(afterSecond.Ctime > secondFound);
        Assert.Equal(0, Store.Unlink(dir.Id, N("g"), Tick(), null, out _, out _, out _));
        Assert.Equal(0, Store.Unlink(dir.Id, N("f"), Tick(), null, out _, out var afterUnlink, out _));
        AssertCurrent(afterUnlink!);
        Assert.Equal(0, Store.RemoveDirectory(Root, N("d"), Tick(), out _, out var afterRmdir));
        AssertCurrent(afterRmdir!);

        void AssertCurrent(Inode reported)
        {
            var current = Store.GetInode(reported.Id)!;
            Assert.Equal((current.Mode, current.Nlink, current.Mtime, current.Ctime, current.Uid, current.Gid, current.Size, current.Version),
                (reported.Mode, reported.Nlink, reported.Mtime, reported.Ctime, reported.Uid, reported.Gid, reported.Size, reported.Version));
        }
    }

    [Fact]
    public void Set_group_id_directories_pass_on_their_group()
    {
        Store.Create(Root, N("shared"), new NewNode(DirMode | FileModes.SetGid, 0, 500), Tick(), out var shared);
        Store.Create(shared.Id, N("f"), new NewNode(FileMode, 1000, 1000), Tick(), out var file);
        Store.Create(shared.Id, N("d"), new NewNode(DirMode, 1000, 1000), Tick(), out var sub);
        Assert.Equal(500, file.Gid);
        Assert.Equal(0, file.Mode & FileModes.SetGid);
        Assert.Equal(500, sub.Gid);
        Assert.NotEqual(0, sub.Mode & FileModes.SetGid);
    }

    [Fact]
    public void Rename_moves_replaces_and_refuses_as_posix_says()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.Create(Root, N("b"), new NewNode(FileMode, 0, 0), Tick(), out var b);
        Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var d);
        Store.Create(Root, N("e"), new NewNode(DirMode, 0, 0), Tick(), out var e);
        Store.Create(e.Id, N("inside"), new NewNode(FileMode, 0, 0), Tick(), out _);

        Assert.Equal(Errno.ENOENT, Store.Rename(Root, N("missing"), Root, N("x"), RenameFlags.None, Tick(), out _));
        Assert.Equal(Errno.EISDIR, Store.Rename(Root, N("a"), Root, N("d"), RenameFlags.None, Tick(), out _));
        Assert.Equal(Errno.ENOTDIR, Store.Rename(Root, N("d"), Root, N("a"), RenameFlags.None, Tick(), out _));
        Assert.Equal(Errno.ENOTEMPTY, Store.Rename(Root, N("d"), Root, N("e"), RenameFlags.None, Tick(), out _));
        Assert.Equal(Errno.EEXIST, Store.Rename(Root, N("a"), Root, N("b"), RenameFlags.NoReplace, Tick(), out _));

        Assert.Equal(0, Store.Rename(Root, N("a"), Root, N("b"), RenameFlags.None, Tick(), out var replaced));
        Assert.Equal(b.Id, replaced!.Id);
        Assert.Equal(0, replaced.Nlink);
        Assert.Equal(a.Id, Store.Lookup(Root, N("b"))!.Id);
        Assert.Null(Store.Lookup(Root, N("a")));

        // A directory moves with its link counts, and may replace an empty directory.
        Assert.Equal(0, Store.Rename(Root, N("d"), e.Id, N("d"), RenameFlags.None, Tick(), out _));
        Assert.Equal(3, Store.GetInode(Root)!.Nlink);
        Assert.Equal(3, Store.GetInode(e.Id)!.Nlink);
        Assert.Equal(e.Id, Store.ParentOf(d.Id));
        Store.Create(Root, N("empty"), new NewNode(DirMode, 0, 0), Tick(), out var empty);
        Assert.Equal(0, Store.Rename(e.Id, N("d"), Root, N("empty"), RenameFlags.None, Tick(), out var replacedDir));
        Assert.Equal(empty.Id, replacedDir!.Id);
        Assert.Equal(0, replacedDir.Nlink);
        Assert.Equal(4, Store.GetInode(Root)!.Nlink);
        Assert.Equal(2, Store.GetInode(e.Id)!.Nlink);
    }

    [Fact]
    public void Rename_of_a_directory_into_its_own_subtree_is_EINVAL()
    {
        Store.Create(Root, N("top"), new NewNode(DirMode, 0, 0), Tick(), out var top);
        Store.Create(top.Id, N("mid"), new NewNode(DirMode, 0, 0), Tick(), out var mid);
        Store.Create(mid.Id, N("low"), new NewNode(DirMode, 0, 0), Tick(), out var low);
        Assert.Equal(Errno.EINVAL, Store.Rename(Root, N("top"), low.Id, N("x"), RenameFlags.None, Tick(), out _));
        Assert.Equal(Errno.EINVAL, Store.Rename(Root, N("top"), top.Id, N("x"), RenameFlags.None, Tick(), out _));
        Store.Create(low.Id, N("x"), new NewNode(FileMode, 0, 0), Tick(), out _);
        Assert.Equal(Errno.EINVAL, Store.Rename(top.Id, N("mid"), low.Id, N("x"), RenameFlags.Exchange, Tick(), out _));
        Assert.Equal(Errno.EINVAL, Store.Rename(low.Id, N("x"), top.Id, N("mid"), RenameFlags.Exchange, Tick(), out _));
    }

    [Fact]
    public void Rename_onto_another_name_of_the_same_inode_does_nothing()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.Link(a.Id, Root, N("b"), Tick(), out _);
        Assert.Equal(0, Store.Rename(Root, N("a"), Root, N("b"), RenameFlags.None, Tick(), out var replaced));
        Assert.Null(replaced);
        Assert.NotNull(Store.Lookup(Root, N("a")));
        Assert.Equal(2, Store.GetInode(a.Id)!.Nlink);
    }

    [Fact]
    public void Rename_exchange_swaps_atomically_and_fixes_link_counts()
    {
        Store.Create(Root, N("file"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        Store.Create(Root, N("sub"), new NewNode(DirMode, 0, 0), Tick(), out var sub);
        Store.Create(sub.Id, N("dir"), new NewNode(DirMode, 0, 0), Tick(), out var dir);
        Assert.Equal(Errno.ENOENT, Store.Rename(Root, N("file"), Root, N("nothing"), RenameFlags.Exchange, Tick(), out _));
        Assert.Equal(0, Store.Rename(Root, N("file"), sub.Id, N("dir"), RenameFlags.Exchange, Tick(), out _));
        Assert.Equal(dir.Id, Store.Lookup(Root, N("file"))!.Id);
        Assert.Equal(file.Id, Store.Lookup(sub.Id, N("dir"))!.Id);
        Assert.Equal(4, Store.GetInode(Root)!.Nlink);
        Assert.Equal(2, Store.GetInode(sub.Id)!.Nlink);
        Assert.Equal(Root, Store.ParentOf(dir.Id));
    }

    [Fact]
    public void Directory_cookies_stay_valid_while_entries_come_and_go()
    {
        for (var i = 0; i < 50; i++) Store.Create(Root, N($"f{i:D2}"), new NewNode(FileMode, 0, 0), Tick(), out _);
        var first = Store.ReadDirectory(Root, 0, 20);
        Assert.Equal(20, first.Count);
        // Remove entries on both sides of the cursor and add new ones: nothing after it is skipped or repeated.
        Store.Unlink(Root, N("f05"), Tick(), out _);
        Store.Unlink(Root, N("f30"), Tick(), out _);
        Store.Create(Root, N("new"), new NewNode(FileMode, 0, 0), Tick(), out _);
        var rest = new List<DirectoryEntry>();
        for (var cookie = first[^1].Cookie; ;)
        {
            var page = Store.ReadDirectory(Root, cookie, 7);
            if (page.Count == 0) break;
            rest.AddRange(page);
            cookie = page[^1].Cookie;
        }
        var names = first.Concat(rest).Select(e => Encoding.UTF8.GetString(e.Name)).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Contains("new", names);
        Assert.DoesNotContain("f30", names);
        Assert.Equal(50, names.Count);
    }

    [Fact]
    public void Attributes_change_and_ctime_follows()
    {
        Store.Create(Root, N("f"), new NewNode(FileMode | FileModes.SetUid, 1, 1), Tick(), out var file);
        var now = Tick();
        Assert.Equal(0, Store.SetAttributes(file.Id, new AttributeChange { Mode = 0x1ED, Uid = 7, Atime = 42, Mtime = 43 }, now, out var updated));
        Assert.Equal(FileModes.Regular | 0x1ED, updated.Mode);
        Assert.Equal(7, updated.Uid);
        Assert.Equal(1, updated.Gid);
        Assert.Equal(42, updated.Atime);
        Assert.Equal(43, updated.Mtime);
        Assert.Equal(now, updated.Ctime);
        Assert.Equal(updated.Mode, Store.GetInode(file.Id)!.Mode);
        Assert.Equal(Errno.ENOENT, Store.SetAttributes(999_999, new AttributeChange(), Tick(), out _));
    }

    [Fact]
    public void Xattrs_honour_create_and_replace_flags()
    {
        Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        Assert.Equal(Errno.ENODATA, Store.GetXattr(file.Id, N("user.a"), out _));
        Assert.Equal(Errno.ENODATA, Store.SetXattr(file.Id, N("user.a"), [1], XattrFlags.Replace, Tick()));
        Assert.Equal(0, Store.SetXattr(file.Id, N("user.a"), [1, 2], XattrFlags.Create, Tick()));
        Assert.Equal(Errno.EEXIST, Store.SetXattr(file.Id, N("user.a"), [3], XattrFlags.Create, Tick()));
        Assert.Equal(0, Store.SetXattr(file.Id, N("user.a"), [], XattrFlags.Replace, Tick()));
        Assert.Equal(0, Store.GetXattr(file.Id, N("user.a"), out var value));
        Assert.Empty(value);
        Assert.Equal(0, Store.SetXattr(file.Id, N("user.b"), [0, 255], XattrFlags.None, Tick()));
        Store.ListXattrs(file.Id, out var names);
        Assert.Equal(["user.a", "user.b"], names.Select(n => Encoding.UTF8.GetString(n)));
        Assert.Equal(0, Store.RemoveXattr(file.Id, N("user.a"), Tick()));
        Assert.Equal(Errno.ENODATA, Store.RemoveXattr(file.Id, N("user.a"), Tick()));
    }

    [Fact]
    public void New_xattr_names_stop_where_the_name_list_would_outgrow_what_listxattr_returns()
    {
        Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        // 255-byte names: 256 bytes each in the list, so 256 of them fill its 64 KiB exactly.
        static byte[] Name(int i) => N($"user.{i:D5}".PadRight(255, 'n'));
        for (var i = 0; i < SqlMetaStore.XattrListMax / 256; i++)
            Assert.Equal(0, Store.SetXattr(file.Id, Name(i), [1], XattrFlags.None, Tick()));
        Assert.Equal(Errno.ENOSPC, Store.SetXattr(file.Id, N("user.x"), [1], XattrFlags.None, Tick()));
        // A name already there can still take a new value; a removal makes room again.
        Assert.Equal(0, Store.SetXattr(file.Id, Name(0), [2, 3], XattrFlags.Replace, Tick()));
        Assert.Equal(0, Store.RemoveXattr(file.Id, Name(1), Tick()));
        Assert.Equal(0, Store.SetXattr(file.Id, N("user.x"), [1], XattrFlags.Create, Tick()));
        Store.ListXattrs(file.Id, out var names);
        Assert.True(names.Sum(n => n.Length + 1) <= SqlMetaStore.XattrListMax);
        // The limit is per file.
        Store.Create(Root, N("g"), new NewNode(FileMode, 0, 0), Tick(), out var other);
        Assert.Equal(0, Store.SetXattr(other.Id, N("user.x"), [1], XattrFlags.None, Tick()));
    }

    [Fact]
    public void Content_commits_count_references_and_report_unreferenced_caps()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.Create(Root, N("b"), new NewNode(FileMode, 0, 0), Tick(), out var b);
        Assert.Equal(0, Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-x", 10), new(1, "cap-y", 5)], 15, 100, 100), out var updated, out var freed));
        Assert.Equal(15, updated.Size);
        Assert.Equal(1, updated.Version);
        Assert.Empty(freed);
        // b shares cap-x (a copy by reference).
        Store.CommitContent(b.Id, new ContentCommit([new(0, "cap-x", 10)], 10, 100, 100), out _, out freed);
        Assert.Empty(freed);
        // a replaces block 0 and is truncated to one block: cap-y is now garbage, cap-x is still b's.
        Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-z", 3)], 3, 101, 101), out updated, out freed);
        Assert.Equal(["cap-y"], freed);
        Assert.Equal([new BlockRef(0, "cap-z", 3)], Store.GetBlocks(a.Id));
        Assert.False(Store.IsUnreferenced("cap-x"));
        Assert.True(Store.IsUnreferenced("cap-y"));
        // A hole punched in b (a block absent from its map) drops its last reference to cap-x.
        Store.CommitContent(b.Id, new ContentCommit([], 10, 102, 102), out _, out freed);
        Assert.Equal(["cap-x"], freed);
        Assert.Empty(Store.GetBlocks(b.Id));
    }

    [Fact]
    public void A_cap_moving_between_blocks_is_never_reported_unreferenced()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-1", 4), new(1, "cap-2", 4)], 8, 1, 1), out _, out _);
        Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-2", 4), new(1, "cap-1", 4)], 8, 2, 2), out _, out var freed);
        Assert.Empty(freed);
    }

    [Fact]
    public void Deleting_an_inode_needs_it_unlinked_and_frees_its_content()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.SetXattr(a.Id, N("user.k"), [1], XattrFlags.None, Tick());
        Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-d", 4)], 4, 1, 1), out _, out _);
        Assert.Equal(Errno.EBUSY, Store.DeleteInode(a.Id, out _));
        Store.Unlink(Root, N("a"), Tick(), out _);
        Assert.Equal([a.Id], Store.OrphanInodes());
        Assert.Equal(0, Store.DeleteInode(a.Id, out var freed));
        Assert.Equal(["cap-d"], freed);
        Assert.Null(Store.GetInode(a.Id));
        Assert.Empty(Store.OrphanInodes());
        Assert.Equal(Errno.ENOENT, Store.DeleteInode(a.Id, out _));
    }

    [Fact]
    public void Usage_counts_inodes_and_bytes()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-u", 1000)], 1000, 1, 1), out _, out _);
        var usage = Store.Usage();
        Assert.Equal(2, usage.Inodes);
        Assert.Equal(1000, usage.Bytes);
    }

    [Fact]
    public void Concurrent_creates_of_one_name_have_exactly_one_winner()
    {
        var results = new int[16];
        var store = Store;
        Parallel.For(0, results.Length, i => results[i] = store.Create(Root, N("race"), new NewNode(FileMode, 0, 0), Tick(), out _));
        Assert.Equal(1, results.Count(r => r == 0));
        Assert.All(results.Where(r => r != 0), r => Assert.Equal(Errno.EEXIST, r));
    }

    [Fact]
    public void A_commit_is_the_whole_block_map_and_blocks_it_omits_are_dropped()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-0", 4), new(1, "cap-1", 4), new(2, "cap-2", 4)], 12, 1, 1), out _, out _);
        // Block 1 becomes a hole, block 2 changes, block 3 appears: nothing of the old map is merged in.
        Assert.Equal(0, Store.CommitContent(a.Id, new ContentCommit([new(0, "cap-0", 4), new(2, "cap-2b", 4), new(3, "cap-3", 4)], 16, 2, 2), out var updated, out var freed));
        Assert.Equal([new BlockRef(0, "cap-0", 4), new BlockRef(2, "cap-2b", 4), new BlockRef(3, "cap-3", 4)], Store.GetBlocks(a.Id));
        Assert.Equal(["cap-1", "cap-2"], freed.Order());
        Assert.Equal(2, updated.Version);
    }

    [Fact]
    public void A_file_counts_the_bytes_of_its_blocks_not_of_its_holes()
    {
        Store.Create(Root, N("sparse"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        Assert.Equal(0, file.Allocated);
        // Blocks 1 to 999 are holes.
        Store.CommitContent(file.Id, new ContentCommit([new(0, "cap-0", 4096), new(1000, "cap-z", 3)], 1000L * 4096 + 3, 1, 1), out var committed, out _);
        Assert.Equal(4099, committed.Allocated);
        // Every way a row is read carries it.
        Assert.Equal(4099, Store.GetInode(file.Id)!.Allocated);
        Assert.Equal(4099, Store.Lookup(Root, N("sparse"))!.Allocated);
        Assert.Equal(4099, Store.ReadDirectory(Root, 0, 100).Single(e => e.Inode.Id == file.Id).Inode.Allocated);
        var (row, blocks) = Store.GetInodeWithBlocks(file.Id);
        Assert.Equal((4099L, 2), (row!.Allocated, blocks.Count));
        Assert.Equal(4099, Store.Usage().Bytes);

        Store.CommitContent(file.Id, new ContentCommit([new(0, "cap-0", 10)], 10, 2, 2), out committed, out _);
        Assert.Equal(10, committed.Allocated);
        Assert.Equal(10, Store.GetInode(file.Id)!.Allocated);
    }

    [Fact]
    public void An_upgraded_database_counts_the_blocks_its_files_already_have()
    {
        long id;
        using (var first = CreateStore(Tick()))
        {
            first.Create(Root, N("old"), new NewNode(FileMode, 0, 0), Tick(), out var file);
            first.CommitContent(file.Id, new ContentCommit([new(0, "cap-a", 10), new(3, "cap-b", 5)], 20, 1, 1), out _, out _);
            id = file.Id;
        }
        // As a database written before inodes counted their blocks: the column's default, migration 3 not recorded.
        ExecuteDirectly("UPDATE inodes SET allocated = 0");
        ExecuteDirectly($"DELETE FROM schema_version WHERE version >= 3");
        using var upgraded = CreateStore(Tick());
        Assert.Equal(15, upgraded.GetInode(id)!.Allocated);
    }

    [Fact]
    public void A_row_is_read_with_its_block_map()
    {
        Store.Create(Root, N("a"), new NewNode(FileMode, 0, 0), Tick(), out var a);
        var (row, blocks) = Store.GetInodeWithBlocks(a.Id);
        Assert.Equal(a.Id, row!.Id);
        Assert.Empty(blocks);

        // Block 1 is a hole; the map comes in index order.
        Store.CommitContent(a.Id, new ContentCommit([new(2, "cap-2", 4), new(0, "cap-0", 4)], 12, 1, 1), out var committed, out _);
        (row, blocks) = Store.GetInodeWithBlocks(a.Id);
        Assert.Equal(committed.Version, row!.Version);
        Assert.Equal(12, row.Size);
        Assert.Equal([new BlockRef(0, "cap-0", 4), new BlockRef(2, "cap-2", 4)], blocks);
        Assert.Equal(Store.GetInode(a.Id)!.Mtime, row.Mtime);

        (row, blocks) = Store.GetInodeWithBlocks(a.Id + 1000);
        Assert.Null(row);
        Assert.Empty(blocks);
    }

    [Fact]
    public void A_map_of_more_blocks_than_one_batch_holds_commits_and_frees_whole()
    {
        Store.Create(Root, N("big"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        // 700 blocks: 600 objects of their own and one object shared by the last 100.
        var first = Enumerable.Range(0, 700).Select(i => new BlockRef(i, i < 600 ? $"cap-{i}" : "cap-shared", 4)).ToList();
        Assert.Equal(0, Store.CommitContent(file.Id, new ContentCommit(first, 2800, 1, 1), out _, out var freed));
        Assert.Empty(freed);
        Assert.Equal(first, Store.GetBlocks(file.Id));

        // Keep the even blocks below 600, replace 500..599, drop the odd ones and 50 of the shared.
        var second = first.Where(b => b.Index < 500 && b.Index % 2 == 0)
            .Concat(Enumerable.Range(500, 100).Select(i => new BlockRef(i, $"cap-new-{i}", 4)))
            .Concat(first.Where(b => b.Index >= 650)).ToList();
        Assert.Equal(0, Store.CommitContent(file.Id, new ContentCommit(second, 2800, 2, 2), out _, out freed));
        Assert.Equal(Enumerable.Range(0, 600).Where(i => i >= 500 || i % 2 == 1).Select(i => $"cap-{i}").Order(), freed.Order());
        Assert.Equal(second, Store.GetBlocks(file.Id));
        Assert.False(Store.IsUnreferenced("cap-shared"));

        Store.Unlink(Root, N("big"), Tick(), out _);
        Assert.Equal(0, Store.DeleteInode(file.Id, out freed));
        Assert.Equal(second.Select(b => b.Cap!).Distinct().Order(), freed.Order());
        Assert.True(Store.IsUnreferenced("cap-shared"));
    }

    [Fact]
    public void An_unlink_may_delete_the_inode_with_its_last_name_in_the_same_transaction()
    {
        Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir);
        Store.Create(dir.Id, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        Store.CommitContent(file.Id, new ContentCommit([new(0, "cap-own", 4), new(1, "cap-shared", 4)], 8, 1, 1), out _, out _);
        Store.Create(Root, N("other"), new NewNode(FileMode, 0, 0), Tick(), out var other);
        Store.CommitContent(other.Id, new ContentCommit([new(0, "cap-shared", 4)], 4, 1, 1), out _, out _);
        Store.SetXattr(file.Id, N("user.k"), [1], XattrFlags.None, Tick());
        var now = Tick();

        Assert.Equal(0, Store.Unlink(dir.Id, N("f"), now, new Reclaim(file.Id, 0), out var unlinked, out var directory, out var freed));

        Assert.Equal((file.Id, 0L, now), (unlinked!.Id, unlinked.Nlink, unlinked.Ctime));
        Assert.Equal((now, now), (directory!.Mtime, directory.Ctime));
        Assert.Equal((now, now), (Store.GetInode(dir.Id)!.Mtime, Store.GetInode(dir.Id)!.Ctime));
        Assert.Equal(["cap-own"], freed);
        Assert.Null(Store.GetInode(file.Id));
        Assert.Null(Store.Lookup(dir.Id, N("f")));
        Assert.Empty(Store.GetBlocks(file.Id));
        Assert.Equal(Errno.ENOENT, Store.DeleteInode(file.Id, out _));
        Assert.True(Store.IsUnreferenced("cap-own"));
        Assert.False(Store.IsUnreferenced("cap-shared"));
        Assert.DoesNotContain(file.Id, Store.OrphanInodes());
    }

    [Fact]
    public void An_unlink_keeps_the_inode_when_it_has_other_names_or_is_not_the_one_expected()
    {
        Store.Create(Root, N("f"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        Store.CommitContent(file.Id, new ContentCommit([new(0, "cap-f", 4)], 4, 1, 1), out _, out _);
        Store.Link(file.Id, Root, N("g"), Tick(), out _);
        Store.Create(Root, N("h"), new NewNode(FileMode, 0, 0), Tick(), out var h);

        // Another name is left.
        Assert.Equal(0, Store.Unlink(Root, N("f"), Tick(), new Reclaim(file.Id, 0), out var unlinked, out _, out var freed));
        Assert.Equal(1, unlinked!.Nlink);
        Assert.Null(freed);
        // The name points to another inode than the caller checked.
        Assert.Equal(0, Store.Unlink(Root, N("h"), Tick(), new Reclaim(file.Id, 0), out unlinked, out _, out freed));
        Assert.Equal((h.Id, 0L), (unlinked!.Id, unlinked.Nlink));
        Assert.Null(freed);
        Assert.Contains(h.Id, Store.OrphanInodes());
        // The last name, as expected.
        Assert.Equal(0, Store.Unlink(Root, N("g"), Tick(), new Reclaim(file.Id, 0), out unlinked, out _, out freed));
        Assert.Equal(["cap-f"], freed);
        Assert.Null(Store.GetInode(file.Id));
        // A directory is not unlinked, whatever the caller expects.
        Store.Create(Root, N("d"), new NewNode(DirMode, 0, 0), Tick(), out var dir);
        Assert.Equal(Errno.EISDIR, Store.Unlink(Root, N("d"), Tick(), new Reclaim(dir.Id, 0), out _, out _, out freed));
        Assert.NotNull(Store.GetInode(dir.Id));
    }

    [Fact]
    public void Concurrent_commits_of_one_file_leave_one_complete_version()
    {
        var store = Store;
        store.Create(Root, N("contended"), new NewNode(FileMode, 0, 0), Tick(), out var file);
        var versions = new[] { "a", "b", "c" }
            .Select(tag => Enumerable.Range(0, 8).Select(i => new BlockRef(i, $"cap-{tag}-{i}", 10)).ToList()).ToArray();
        var results = new int[24];
        Parallel.For(0, results.Length, n =>
            results[n] = store.CommitContent(file.Id, new ContentCommit(versions[n % versions.Length], 80, n + 1, n + 1), out _, out _));
        Assert.All(results, r => Assert.Equal(0, r));
        var final = store.GetBlocks(file.Id);
        Assert.Contains(versions, version => version.SequenceEqual(final));
        Assert.Equal(results.Length, store.GetInode(file.Id)!.Version);
        // The losing versions' objects are unreferenced; the winner's are referenced once.
        foreach (var version in versions)
            Assert.All(version, block => Assert.Equal(!final.Contains(block), store.IsUnreferenced(block.Cap!)));
    }

    private long Tick() => Interlocked.Add(ref _clock, 1000);

    private static byte[] N(string name) => Encoding.UTF8.GetBytes(name);
}

public sealed class SqliteMetaStoreTests : MetaStoreConformance
{
    private readonly string _directory = Directory.CreateTempSubdirectory("truckeefs-meta-").FullName;

    protected override IMetaStore CreateStore(long now) => new SqlMetaStore(new SqliteDialect(Path.Combine(_directory, "m.db")), now, 0, 0);

    [Fact]
    public void The_embedded_database_is_not_shared()
    {
        using var store = CreateStore(1);
        Assert.False(store.IsShared);
    }

    [Fact]
    public void The_embedded_database_runs_on_the_system_sqlite_library()
    {
        using var store = CreateStore(1);
        var maps = File.ReadAllText("/proc/self/maps");
        Assert.Contains("libsqlite3.so", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("libe_sqlite3", maps, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sync_makes_the_log_durable_without_copying_it_into_the_database()
    {
        using var store = CreateStore(1);
        Assert.Equal(0, store.Create(Schema.RootInode, "synced"u8.ToArray(), new NewNode(FileModes.Regular | 0x1A4, 0, 0), 2, out _));
        var database = Path.Combine(_directory, "m.db");
        var before = File.ReadAllBytes(database);
        var log = new FileInfo(database + "-wal").Length;
        Assert.True(log > 0, "the commit is not in the write-ahead log");

        store.Sync();

        // A checkpoint would have copied the log's pages into the database file.
        Assert.Equal(before, File.ReadAllBytes(database));
        Assert.Equal(log, new FileInfo(database + "-wal").Length);
    }

    [Fact]
    public void Locks_are_kept_in_memory_and_write_nothing_to_the_database()
    {
        var database = Path.Combine(_directory, "m.db");
        using (var store = CreateStore(1))
        {
            Assert.Equal(0, store.Create(Schema.RootInode, "locked"u8.ToArray(), new NewNode(FileModes.Regular | 0x1A4, 0, 0), 2, out var file));
            var log = new FileInfo(database + "-wal").Length;
            for (var owner = 1; owner <= 20; owner++)
            {
                Assert.Equal(0, store.SetLock(new FileLockRequest(file.Id, 1, owner, 100, false, FileLockType.Read, owner * 10, owner * 10 + 5), out _));
                Assert.Equal(0, store.SetLock(new FileLockRequest(file.Id, 1, owner, 100, true, FileLockType.Read, 0, long.MaxValue), out _));
            }
            Assert.Equal(Errno.EAGAIN, store.SetLock(new FileLockRequest(file.Id, 1, 99, 100, false, FileLockType.Write, 0, 1000), out var conflict));
            Assert.Equal(10, conflict!.First);
            Assert.Equal(1, store.ReleaseLocks(file.Id, 1, 1, flock: false));
            Assert.Equal(log, new FileInfo(database + "-wal").Length);
        }
        Assert.Equal(0L, ExecuteDirectly("SELECT COUNT(*) FROM locks"));

        // Rows an older truckeefs left in the file's own table are gone at the next start.
        ExecuteDirectly("INSERT INTO locks (inode, session, owner, pid, flock, is_write, first_byte, last_byte) VALUES (2, 1, 7, 1, 0, 1, 0, 9)");
        using (var again = CreateStore(3))
            Assert.Null(again.TestLock(new FileLockRequest(2, 5, 8, 1, false, FileLockType.Write, 0, 9)));
        Assert.Equal(0L, ExecuteDirectly("SELECT COUNT(*) FROM locks"));
    }

    [Fact]
    public void The_log_starts_over_from_an_empty_file_after_a_checkpoint()
    {
        // Written over in place, the old log's pages would be read from disk again wherever
        // memory pressure had evicted them (a frame covers part of a page): one synchronous
        // read every few frames. Starting from an empty file, every write appends.
        using var store = CreateStore(1);
        var log = Path.Combine(_directory, "m.db-wal");
        long largest = 0;
        for (var i = 0; i < 40_000; i++)
        {
            Assert.Equal(0, store.Create(Schema.RootInode, Encoding.ASCII.GetBytes($"f{i}"), new NewNode(FileModes.Regular | 0x1A4, 0, 0), 2, out _));
            var size = new FileInfo(log).Length;
            if (size < largest)
            {
                // The checkpoint at 32 MiB copied the log into the database; the log restarted empty.
                Assert.True(largest >= 30 << 20, $"the log was {largest} bytes before it restarted");
                Assert.True(size < 1 << 20, $"the log restarted at {size} bytes");
                return;
            }
            largest = size;
        }
        Assert.Fail($"the log grew to {largest} bytes and never started over");
    }

    [Fact]
    public void A_new_database_gets_small_pages_and_an_existing_one_keeps_its_own()
    {
        using (CreateStore(1))
        {
        }
        Assert.Equal(1024L, ExecuteDirectly("PRAGMA page_size"));

        var older = Path.Combine(_directory, "older.db");
        SqliteLibrary.EnsureLoaded();
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={older};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE made_before (x INTEGER);";
            command.ExecuteNonQuery();
        }
        using (var store = new SqlMetaStore(new SqliteDialect(older), 1, 0, 0))
            Assert.Equal(0, store.Create(Schema.RootInode, "f"u8.ToArray(), new NewNode(FileModes.Regular | 0x1A4, 0, 0), 2, out _));
        using var check = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={older};Pooling=False");
        check.Open();
        using var pageSize = check.CreateCommand();
        pageSize.CommandText = "PRAGMA page_size";
        Assert.Equal(4096L, pageSize.ExecuteScalar());
    }

    protected override object? ExecuteDirectly(string sql)
    {
        SqliteLibrary.EnsureLoaded();
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "m.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public override void Dispose()
    {
        base.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
