using MySql.Data.MySqlClient;
using System.Diagnostics;
using System.Globalization;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Servers;
using TruckeeFs.Tests.WriteBack;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// What the system calls of a small-file workload cost in round trips to MariaDB, on a mount
/// set up as bench/production.sh sets it up (MariaDB metadata, Redis, the local content store),
/// with a relay in front of the database that counts them. Heartbeats are put off, so that only
/// the calls measured talk to the database.
/// </summary>
public sealed class MetadataRoundTripMountTests : IAsyncLifetime
{
    private ProductionFilesystem _fs = null!;
    private RoundTripCounter _relay = null!;

    public async Task InitializeAsync()
    {
        _fs = await ProductionFilesystem.CreateAsync();
        _relay = new RoundTripCounter(_fs.MariaDb.Host, _fs.MariaDb.Port);
    }

    public async Task DisposeAsync()
    {
        _relay.Dispose();
        await _fs.DisposeAsync();
    }

    [Fact]
    public async Task A_stat_of_files_just_closed_and_of_their_directory_costs_no_query()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var dir = Path.Combine(mount.Path, "d");
        Assert.Equal(0, Sys.Mkdir(dir, 0x1ED));
        var names = Enumerable.Range(0, 20).Select(i => Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"f{i}"))).ToList();
        foreach (var name in names) CreateCommitted(name);

        _relay.Reset();
        Assert.Equal(0, Sys.Stat(dir, out var directory));
        foreach (var name in names)
        {
            Assert.Equal(0, Sys.Stat(name, out var file));
            Assert.Equal(3, file.Size);
        }

        Assert.Equal(0, _relay.RoundTrips);
        Assert.Equal(2UL, directory.Nlink);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Writes_to_a_file_with_no_extended_attributes_cost_no_query_until_another_mount_sets_one()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        await using var other = await TruckeeFsMount.StartAsync(Options(_fs.MariaDb.Port));
        var created = Path.Combine(mount.Path, "created");
        var listed = Path.Combine(mount.Path, "listed");
        await File.WriteAllBytesAsync(Path.Combine(other.Path, "listed"), [9]);
        Assert.Equal(0, Sys.Open(created, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x1A4, out var fd));
        // The other mount's invalidations of that write (each sent again 200 ms later) are in:
        // arriving after the listing below, they would drop what it taught this mount.
        await Task.Delay(TimeSpan.FromSeconds(1));

        // The kernel asks for security.capability before every write(2): a file this mount
        // created has none, and a file whose list of attributes came back empty neither.
        _relay.Reset();
        for (var i = 0; i < 10; i++) Assert.Equal(0, Sys.Write(fd, [1, 2, 3], out _));
        Assert.Equal(0, _relay.RoundTrips);
        Assert.Equal(0, Sys.ListXattr(listed, out var names));
        Assert.Empty(names);
        var afterList = _relay.RoundTrips;
        Assert.Equal(Sys.ENODATA, Sys.GetXattr(listed, "user.a", out _));
        Assert.Equal(Sys.ENODATA, Sys.GetXattr(created, "user.a", out _));
        Assert.Equal(afterList, _relay.RoundTrips);

        // Another mount's change reaches this one's cache through its invalidation.
        Assert.Equal(0, Sys.SetXattr(Path.Combine(other.Path, "created"), "user.a", [7], 0));
        Assert.Equal(0, Sys.SetXattr(Path.Combine(other.Path, "listed"), "user.a", [8], 0));
        await TahoeBackedFilesystem.WaitUntilAsync(() => Sys.GetXattr(created, "user.a", out var value) == 0 && value.SequenceEqual(new byte[] { 7 }), "this mount saw the attribute set on the file it created", 10);
        await TahoeBackedFilesystem.WaitUntilAsync(() => Sys.GetXattr(listed, "user.a", out var value) == 0 && value.SequenceEqual(new byte[] { 8 }), "this mount saw the attribute set on the file it listed", 10);

        // And this mount's own change, at once.
        Assert.Equal(0, Sys.SetXattr(listed, "user.b", [6], 0));
        Assert.Equal(0, Sys.GetXattr(listed, "user.b", out var own));
        Assert.Equal([6], own);
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(0, await other.UnmountAsync());
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task An_unlink_of_a_file_closed_here_deletes_it_in_the_same_transaction()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var path = Path.Combine(mount.Path, "doomed");
        CreateCommitted(path);
        Assert.Equal(0, Sys.Stat(path, out var file));
        var inode = (long)file.Ino;
        var objects = Path.Combine(mount.DataDir, "contents");
        var stored = Directory.GetFiles(objects, "*", SearchOption.AllDirectories).Length;
        // The reference of a file closed here leaves the database at the next heartbeat.
        Assert.Equal(1, _fs.Count(string.Create(CultureInfo.InvariantCulture, $"SELECT COUNT(*) FROM opens WHERE inode = {inode}")));

        _relay.Reset();
        Assert.Equal(0, Sys.Unlink(path));

        // Name, row, block map and reference went in the unlink's two round trips; the object
        // goes after one more, the check that no block map took it meanwhile. The kernel's
        // forget of the inode costs none.
        Assert.Equal(0, _fs.Count(string.Create(CultureInfo.InvariantCulture, $"SELECT COUNT(*) FROM inodes WHERE id = {inode}")));
        Assert.Equal(0, _fs.Count(string.Create(CultureInfo.InvariantCulture, $"SELECT COUNT(*) FROM opens WHERE inode = {inode}")));
        Assert.Equal(0, _fs.Count(string.Create(CultureInfo.InvariantCulture, $"SELECT COUNT(*) FROM blocks WHERE inode = {inode}")));
        await TahoeBackedFilesystem.WaitUntilAsync(() => Directory.GetFiles(objects, "*", SearchOption.AllDirectories).Length == stored - 1, "the file's object was deleted", 10);
        await Task.Delay(500);
        Assert.Equal(3, _relay.RoundTrips);
        Assert.Equal(Sys.ENOENT, Sys.Stat(path, out _));
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task A_name_new_to_a_directory_this_mount_made_is_looked_up_without_a_query_until_something_else_changes_it()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        await using var other = await TruckeeFsMount.StartAsync(Options(_fs.MariaDb.Port));
        var made = Path.Combine(mount.Path, "made");
        Assert.Equal(0, Sys.Mkdir(made, 0x1ED));

        // The kernel looks a name up before it creates it: in a directory this mount did not
        // make (the root, made at init) that is one query more.
        var inMade = CreateCost(Path.Combine(made, "first"));
        var inRoot = CreateCost(Path.Combine(mount.Path, "first"));
        Assert.Equal(inRoot - 1, inMade);
        Assert.Equal(inMade, CreateCost(Path.Combine(made, "second")));
        _relay.Reset();
        Assert.Equal(Sys.ENOENT, Sys.Stat(Path.Combine(made, "missing"), out _));
        Assert.Equal(0, Sys.Stat(Path.Combine(made, "second"), out _));
        Assert.Equal(0, _relay.RoundTrips);

        // Another mount's change of the directory ends it (its invalidation arrives).
        await File.WriteAllBytesAsync(Path.Combine(other.Path, "made", "theirs"), [1]);
        await TahoeBackedFilesystem.WaitUntilAsync(() => Sys.Stat(Path.Combine(made, "theirs"), out _) == 0, "this mount saw the other mount's file", 10);
        // Invalidations are applied twice, the second time 200 ms later, and each makes the
        // kernel ask for the directory's attributes again: let them pass, and refresh those
        // attributes, so that only the lookup is counted.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(0, Sys.Stat(made, out _));
        _relay.Reset();
        Assert.Equal(Sys.ENOENT, Sys.Stat(Path.Combine(made, "missing"), out _));
        Assert.Equal(1, _relay.RoundTrips);

        // So does a change whose invalidation never came (a mount that lost its coordinator):
        // this mount's next change of the directory finds its ctime moved.
        var quiet = Path.Combine(mount.Path, "quiet");
        Assert.Equal(0, Sys.Mkdir(quiet, 0x1ED));
        Assert.Equal(0, Sys.Stat(quiet, out var quietDirectory));
        CreateCost(Path.Combine(quiet, "mine"));
        using (var connection = new MySqlConnection(_fs.ConnectionString))
        {
            connection.Open();
            using var command = new MySqlCommand(
                "INSERT INTO inodes (mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target, version) VALUES (33188, 0, 0, 1, 0, 1, 1, 1, 0, NULL, 0);" +
                "INSERT INTO dirents (parent, name, inode) VALUES (@parent, _binary 'unannounced', LAST_INSERT_ID());" +
                "UPDATE inodes SET mtime = mtime + 1, ctime = ctime + 1 WHERE id = @parent", connection);
            command.Parameters.AddWithValue("@parent", (long)quietDirectory.Ino);
            command.ExecuteNonQuery();
        }
        CreateCost(Path.Combine(quiet, "mine too"));
        Assert.Equal(0, Sys.Stat(Path.Combine(quiet, "unannounced"), out _));
        Assert.Equal(0, await other.UnmountAsync());
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Hundreds_of_files_written_and_closed_in_a_directory_made_here_leave_its_names_known()
    {
        // Closes on MariaDB leave their commits to the upload queue, so commits of files land
        // while the next files are created: none of them is a change of the directory.
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var dir = Path.Combine(mount.Path, "many");
        Assert.Equal(0, Sys.Mkdir(dir, 0x1ED));
        const int Files = 600;
        for (var i = 0; i < Files; i++)
        {
            Assert.Equal(0, Sys.Open(Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"f{i}")), Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x1A4, out var fd));
            Assert.Equal(0, Sys.Write(fd, [1, 2, 3], out _));
            Assert.Equal(0, Sys.Close(fd));
        }
        await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Count("SELECT COUNT(*) FROM inodes WHERE size = 3") == Files, "every file was committed", 30);

        _relay.Reset();
        for (var i = 0; i < 20; i++) Assert.Equal(Sys.ENOENT, Sys.Stat(Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"missing{i}")), out _));
        Assert.Equal(0, _relay.RoundTrips);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Times_owner_and_mode_set_on_a_file_being_written_cost_no_query_and_land_with_its_contents()
    {
        // tar, cp -a and rsync set them on every file they write, before the close.
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var path = Path.Combine(mount.Path, "extracted");
        Assert.Equal(0, Sys.Open(path, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x180, out var fd));
        Assert.Equal(0, Sys.Write(fd, [1, 2, 3], out _));
        Assert.Equal(0, Sys.FStat(fd, out var created));

        _relay.Reset();
        Assert.Equal(0, Sys.Utimensat(path, new Timespec(1_000_000, 0), new Timespec(2_000_000, 0)));
        Assert.Equal(0, Sys.Chown(path, 1000, 1001));
        Assert.Equal(0, Sys.Chmod(path, 0x1A4));
        Assert.Equal(0, Sys.FStat(fd, out var changed));
        Assert.Equal(0, _relay.RoundTrips);
        Assert.Equal((0x1A4u, 1000u, 1001u, 2_000_000_000_000_000L, 3L), (changed.Permissions, changed.Uid, changed.Gid, changed.MtimeNs, changed.Size));

        Assert.Equal(0, Sys.Close(fd));
        var inode = string.Create(CultureInfo.InvariantCulture, $"id = {created.Ino}");
        await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Count($"SELECT COUNT(*) FROM inodes WHERE {inode} AND size = 3") == 1, "the file was committed", 10);
        Assert.Equal(2_000_000_000_000_000L, _fs.Count($"SELECT mtime FROM inodes WHERE {inode}"));
        Assert.Equal(1000, _fs.Count($"SELECT uid FROM inodes WHERE {inode}"));
        Assert.Equal(0x81A4, _fs.Count($"SELECT mode FROM inodes WHERE {inode}"));
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task Statfs_counts_the_filesystem_once_for_a_burst_of_calls()
    {
        // Counting scans every inode row: df, file managers and programs checking free space
        // may ask many times a second, and the count may be a moment old.
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        Assert.Equal(0, Sys.StatVfs(mount.Path, out _));
        _relay.Reset();
        for (var i = 0; i < 50; i++) Assert.Equal(0, Sys.StatVfs(mount.Path, out _));
        Assert.Equal(0, _relay.RoundTrips);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task An_open_of_a_file_not_open_here_reads_its_row_and_block_map_in_one_query()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var path = Path.Combine(mount.Path, "kept");
        CreateCommitted(path);
        Assert.Equal(0, Sys.Stat(path, out _));
        // The kernel's release of the write's descriptor comes after close(2) returned.
        await Task.Delay(TimeSpan.FromMilliseconds(300));

        // Opens on a shared database read the row afresh (close-to-open across mounts); the
        // block map comes with it. The reference of the file, taken at its create, is still there.
        _relay.Reset();
        Assert.Equal(0, Sys.Open(path, Sys.O_RDONLY, 0, out var fd));
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(1, _relay.RoundTrips);
        Assert.Equal(0, await mount.UnmountAsync());
    }

    [Fact]
    public async Task An_open_that_records_the_reference_of_a_file_reads_its_row_and_block_map_in_the_same_round_trip()
    {
        // Written by another mount: this one has no reference of the file yet.
        await using var writer = await TruckeeFsMount.StartAsync(Options(_fs.MariaDb.Port));
        CreateCommitted(Path.Combine(writer.Path, "shared"));
        await using var mount = await TruckeeFsMount.StartAsync(Options());
        var path = Path.Combine(mount.Path, "shared");
        Assert.Equal(0, Sys.Stat(path, out _));

        _relay.Reset();
        Assert.Equal(0, Sys.Open(path, Sys.O_RDONLY, 0, out var fd));
        Assert.Equal(1, _relay.RoundTrips);
        Assert.Equal(0, Sys.FStat(fd, out var opened));
        Assert.Equal(0, Sys.Close(fd));
        Assert.Equal(3, opened.Size);
        // This mount's reference is there beside the writer's (taken at its create), for the
        // writer's unlink to respect. The contents stay in the writer's local store: this mount
        // does not read them.
        Assert.Equal(2, _fs.Count(string.Create(CultureInfo.InvariantCulture, $"SELECT COUNT(*) FROM opens WHERE inode = {opened.Ino}")));
        Assert.Equal(0, await mount.UnmountAsync());
        Assert.Equal(0, await writer.UnmountAsync());
    }

    [Fact]
    public async Task The_references_of_closed_files_stay_ten_heartbeats_and_then_leave_together()
    {
        await using var mount = await TruckeeFsMount.StartAsync(Options(heartbeatSeconds: 0.5));
        for (var i = 0; i < 40; i++) CreateCost(Path.Combine(mount.Path, string.Create(CultureInfo.InvariantCulture, $"closed{i}")));
        var closed = Stopwatch.StartNew();

        _relay.Reset();
        // A file opened again within that time needs no new reference.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(40, _fs.Count("SELECT COUNT(*) FROM opens"));
        Assert.Equal(0, Sys.Open(Path.Combine(mount.Path, "closed0"), Sys.O_RDONLY, 0, out var fd));
        Assert.Equal(0, Sys.Close(fd));
        await TahoeBackedFilesystem.WaitUntilAsync(() => _fs.Count("SELECT COUNT(*) FROM opens") == 0, "the references of the closed files left", 30);
        var waited = closed.Elapsed;
        Assert.True(waited >= TimeSpan.FromSeconds(4.5), $"the references left after {waited.TotalSeconds:F1} s");

        // Counted in statements sent, not in round trips over a time, which the number of
        // heartbeats in it (their pace under load) would decide.
        var requests = _relay.Requests;
        Assert.DoesNotContain(requests, r => r.Contains("INSERT INTO opens", StringComparison.Ordinal));
        // The 39 references not used again left together (in two transactions if a heartbeat
        // fell while the files were being closed, which took far less than a heartbeat); closed0's,
        // renewed by its open, left at a later heartbeat.
        var removals = requests.Where(r => r.Contains("DELETE FROM opens", StringComparison.Ordinal)).ToList();
        Assert.All(removals, r => Assert.Contains("COMMIT", r, StringComparison.Ordinal));
        var removed = removals.Select(InodesListed).ToList();
        Assert.InRange(removed.Count, 2, 3);
        Assert.Equal(1, removed[^1]);
        Assert.Equal(39, removed[..^1].Sum());
        Assert.Equal(0, await mount.UnmountAsync());
    }

    /// <summary>How many inodes a statement's <c>inode IN (...)</c> names.</summary>
    private static int InodesListed(string request)
    {
        var list = request[(request.IndexOf("inode IN (", StringComparison.Ordinal) + "inode IN (".Length)..];
        return list[..list.IndexOf(')', StringComparison.Ordinal)].Split(',').Length;
    }

    /// <summary>
    /// Creates a file of three bytes, committed before fsync(2) returns: the commit a close would
    /// run after close(2) returned (the kernel sends the release on its own).
    /// </summary>
    private static void CreateCommitted(string path)
    {
        Assert.Equal(0, Sys.Open(path, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x1A4, out var fd));
        Assert.Equal(0, Sys.Write(fd, [1, 2, 3], out _));
        Assert.Equal(0, Sys.Fsync(fd));
        Assert.Equal(0, Sys.Close(fd));
    }

    /// <summary>Round trips of creating an empty file that does not exist yet (open with O_EXCL, close).</summary>
    private int CreateCost(string path)
    {
        _relay.Reset();
        Assert.Equal(0, Sys.Open(path, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_EXCL, 0x1A4, out var fd));
        Assert.Equal(0, Sys.Close(fd));
        return _relay.RoundTrips;
    }

    /// <summary>Through the counting relay, or straight to <paramref name="sqlPort"/>; heartbeats put off unless asked for.</summary>
    private TruckeeFsMountOptions Options(int? sqlPort = null, double heartbeatSeconds = 3600) => _fs.LocalStoreOptions(
        sqlPort: sqlPort ?? _relay.Port,
        extra:
        [
            "--session-heartbeat", heartbeatSeconds.ToString(CultureInfo.InvariantCulture),
            "--session-timeout", Math.Max(30, 2 * heartbeatSeconds).ToString(CultureInfo.InvariantCulture),
        ]);
}
