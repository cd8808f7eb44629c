using TruckeeFs.Meta;
using TruckeeFs.Vfs;

namespace TruckeeFs.Tests.Engine;

/// <summary>The rules that keep the engine's metadata cache no staler than the kernel's own caches.</summary>
public sealed class MetadataCacheTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Fact]
    public void A_row_read_while_a_change_landed_is_not_kept()
    {
        var cache = new MetadataCache(Minute, Minute);
        var ticket = cache.Ticket();
        // The query ran; before its result is kept, a change of this or another inode lands.
        cache.Invalidate(Invalidation.Attributes(99));
        cache.PutInode(Row(7, mode: 1), ticket);
        Assert.Null(cache.GetInode(7));

        var fresh = cache.Ticket();
        cache.PutInode(Row(7, mode: 2), fresh);
        Assert.Equal(2, cache.GetInode(7)!.Mode);
    }

    [Fact]
    public void The_row_of_a_change_is_kept_unless_another_change_of_that_row_came_during_it()
    {
        var cache = new MetadataCache(Minute, Minute);
        using (var ticket = cache.WatchRow(7))
        {
            // Changes of other rows (one 256 apart: counts shared by stripes of 256 mixed them
            // up) and of names meanwhile, then the change's own invalidation.
            cache.Invalidate(Invalidation.Data(8));
            cache.Invalidate(Invalidation.Data(7 + 256));
            cache.Invalidate(Invalidation.Entry(7, "n"u8));
            cache.Invalidate(Invalidation.Data(7));
            cache.PutChanged(Row(7, mode: 1), ticket);
            Assert.Equal(1, cache.GetInode(7)!.Mode);
        }

        // Another change of the row (another mount's, arriving during this one) came too.
        using (var ticket = cache.WatchRow(7))
        {
            cache.Invalidate(Invalidation.Attributes(7));
            cache.Invalidate(Invalidation.Data(7));
            cache.PutChanged(Row(7, mode: 2), ticket);
            Assert.Null(cache.GetInode(7));
        }
    }

    [Fact]
    public void Tickets_of_one_row_count_from_their_own_start_and_leave_nothing_behind()
    {
        var cache = new MetadataCache(Minute, Minute);
        var first = cache.WatchRow(7);
        cache.Invalidate(Invalidation.Data(7));
        using (var second = cache.WatchRow(7))
        {
            cache.Invalidate(Invalidation.Data(7));
            // The second change saw its own invalidation only; the first saw two.
            cache.PutChanged(Row(7, mode: 2), second);
            Assert.Equal(2, cache.GetInode(7)!.Mode);
            cache.PutChanged(Row(7, mode: 1), first);
            Assert.Equal(2, cache.GetInode(7)!.Mode);
        }
        Assert.Equal(1, cache.WatchedRows);
        first.Dispose();
        first.Dispose();
        Assert.Equal(0, cache.WatchedRows);
    }

    [Fact]
    public void Changes_drop_what_they_name_and_nothing_else()
    {
        var cache = new MetadataCache(Minute, Minute);
        var ticket = cache.Ticket();
        cache.PutInode(Row(1), ticket);
        cache.PutInode(Row(2), ticket);
        cache.PutName(1, "a"u8.ToArray(), 2, ticket);
        cache.PutName(1, "b"u8.ToArray(), 3, ticket);

        cache.Invalidate(Invalidation.Data(1));
        cache.Invalidate(Invalidation.Entry(1, "a"u8));
        Assert.Null(cache.GetInode(1));
        Assert.NotNull(cache.GetInode(2));
        Assert.Null(cache.GetName(1, "a"u8.ToArray()));
        Assert.Equal(3, cache.GetName(1, "b"u8.ToArray()));
        cache.Forget(2);
        Assert.Null(cache.GetInode(2));
    }

    [Fact]
    public void Knowing_an_inode_has_no_extended_attributes_ends_with_any_change_of_its_row()
    {
        var cache = new MetadataCache(Minute, Minute);
        cache.PutCommittedNoXattrs(7);
        cache.PutCommittedNoXattrs(8);
        cache.Invalidate(Invalidation.Entry(7, "n"u8));
        Assert.True(cache.HasNoXattrs(7));
        // An xattr change moves the ctime: its invalidation names the row.
        cache.Invalidate(Invalidation.Attributes(7));
        Assert.False(cache.HasNoXattrs(7));
        Assert.True(cache.HasNoXattrs(8));
        cache.Forget(8);
        Assert.False(cache.HasNoXattrs(8));

        // A list that came back empty while a change landed says nothing.
        var ticket = cache.Ticket();
        cache.Invalidate(Invalidation.Attributes(99));
        cache.PutNoXattrs(9, ticket);
        Assert.False(cache.HasNoXattrs(9));
        cache.PutNoXattrs(9, cache.Ticket());
        Assert.True(cache.HasNoXattrs(9));
    }

    [Fact]
    public void Names_are_compared_as_bytes()
    {
        var cache = new MetadataCache(Minute, Minute);
        cache.PutCommittedName(1, "A"u8.ToArray(), 10);
        cache.PutCommittedName(1, [0xff, 0xfe], 11);
        Assert.Null(cache.GetName(1, "a"u8.ToArray()));
        Assert.Null(cache.GetName(2, "A"u8.ToArray()));
        Assert.Equal(10, cache.GetName(1, "A"u8.ToArray()));
        Assert.Equal(11, cache.GetName(1, [0xff, 0xfe]));
    }

    [Fact]
    public async Task Entries_live_no_longer_than_the_kernel_may_cache_them()
    {
        var cache = new MetadataCache(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));
        cache.PutCommitted(Row(5));
        cache.PutCommittedName(1, "n"u8.ToArray(), 5);
        Assert.NotNull(cache.GetInode(5));
        await Task.Delay(200);
        Assert.Null(cache.GetInode(5));
        Assert.Null(cache.GetName(1, "n"u8.ToArray()));

        var off = new MetadataCache(TimeSpan.Zero, TimeSpan.Zero);
        off.PutCommitted(Row(5));
        Assert.Null(off.GetInode(5));
    }

    [Fact]
    public void Callers_get_copies_and_memory_stays_bounded()
    {
        var cache = new MetadataCache(Minute, Minute, capacity: 100);
        cache.PutCommitted(Row(1, mode: 1));
        cache.GetInode(1)!.Mode = 9;
        Assert.Equal(1, cache.GetInode(1)!.Mode);
        for (var i = 2; i <= 1000; i++) cache.PutCommitted(Row(i));
        var kept = Enumerable.Range(1, 1000).Count(i => cache.GetInode(i) is not null);
        Assert.InRange(kept, 1, 100);
    }

    [Fact]
    public void Only_entries_held_count_against_the_bound()
    {
        var cache = new MetadataCache(Minute, Minute, capacity: 10);
        for (var i = 1; i <= 5; i++) cache.PutCommitted(Row(i));
        // Stores over an entry held, and entries stored then dropped, take no room.
        for (var i = 0; i < 1000; i++) cache.PutCommitted(Row(1, mode: i));
        for (var i = 100; i < 1100; i++)
        {
            cache.PutCommitted(Row(i));
            cache.Forget(i);
        }
        Assert.All(Enumerable.Range(1, 5), i => Assert.NotNull(cache.GetInode(i)));
    }

    [Fact]
    public void A_directory_this_mount_made_knows_its_names_while_only_this_mount_adds_them()
    {
        var cache = new MetadataCache(Minute, Minute);
        cache.PutCreatedDirectory(Directory(5, ctime: 100));
        Assert.True(cache.IsAbsent(5, "a"u8.ToArray()));

        AddName(cache, 5, "a", ctimeFound: 100, ctimeLeft: 200);
        Assert.False(cache.IsAbsent(5, "a"u8.ToArray()));
        Assert.True(cache.IsAbsent(5, "b"u8.ToArray()));
        Assert.False(cache.IsAbsent(6, "b"u8.ToArray()));

        // The next change found a ctime other than the one the names are known as of: something
        // else changed the directory first, whose invalidation has not come (or never will).
        AddName(cache, 5, "b", ctimeFound: 250, ctimeLeft: 300);
        Assert.False(cache.IsAbsent(5, "z"u8.ToArray()));
    }

    [Fact]
    public void Any_other_change_of_the_directory_ends_knowing_its_names()
    {
        var cache = new MetadataCache(Minute, Minute);
        foreach (var change in new[] { Invalidation.Entry(5, "x"u8), Invalidation.Data(5), Invalidation.Attributes(5) })
        {
            cache.PutCreatedDirectory(Directory(5, ctime: 100));
            cache.Invalidate(change);
            Assert.False(cache.IsAbsent(5, "z"u8.ToArray()));
        }

        // A change arriving while this mount added a name: not put back.
        cache.PutCreatedDirectory(Directory(5, ctime: 100));
        var known = cache.KnownNames(5)!;
        using (var ticket = cache.WatchRow(5))
        {
            cache.Invalidate(Invalidation.Data(5));
            cache.Invalidate(Invalidation.Entry(5, "a"u8));
            cache.Invalidate(Invalidation.Data(5));
            cache.PutCreatedName(5, "a"u8.ToArray(), known, ticket, 100, 200);
        }
        Assert.False(cache.IsAbsent(5, "z"u8.ToArray()));

        // The commit of a file closed in the directory, landing during a create there, is no
        // change of the directory: not even the file 256 inodes on.
        cache.PutCreatedDirectory(Directory(5, ctime: 100));
        known = cache.KnownNames(5)!;
        using (var ticket = cache.WatchRow(5))
        {
            cache.Invalidate(Invalidation.Contents(5 + 256, 1));
            cache.Invalidate(Invalidation.Entry(5, "b"u8));
            cache.Invalidate(Invalidation.Data(5));
            cache.PutCreatedName(5, "b"u8.ToArray(), known, ticket, 100, 200);
        }
        Assert.True(cache.IsAbsent(5, "z"u8.ToArray()));
        Assert.False(cache.IsAbsent(5, "b"u8.ToArray()));

        // A full cache starts again, known names too.
        var small = new MetadataCache(Minute, Minute, capacity: 3);
        small.PutCreatedDirectory(Directory(5, ctime: 1));
        for (var i = 0; i < 4; i++) AddName(small, 5, i.ToString(System.Globalization.CultureInfo.InvariantCulture), ctimeFound: i + 1, ctimeLeft: i + 2);
        Assert.False(small.IsAbsent(5, "z"u8.ToArray()));
    }

    /// <summary>A create of this mount in <paramref name="directory"/>, as the engine reports it to the cache.</summary>
    private static void AddName(MetadataCache cache, long directory, string name, long ctimeFound, long ctimeLeft)
    {
        var known = cache.KnownNames(directory);
        using var ticket = cache.WatchRow(directory);
        cache.Invalidate(Invalidation.Entry(directory, System.Text.Encoding.UTF8.GetBytes(name)));
        cache.Invalidate(Invalidation.Data(directory));
        if (known is not null) cache.PutCreatedName(directory, System.Text.Encoding.UTF8.GetBytes(name), known, ticket, ctimeFound, ctimeLeft);
    }

    private static Inode Directory(long id, long ctime) => new() { Id = id, Mode = FileModes.Directory | 0x1ED, Nlink = 2, Ctime = ctime };

    private static Inode Row(long id, long mode = FileModes.Regular | 0x1A4) => new() { Id = id, Mode = mode, Nlink = 1 };
}
