using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MySql.Data.MySqlClient;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// The conformance suite on MariaDB (the shared test server, a fresh database per test), plus
/// what only a network database shows: failing logins and servers, many writers at once, and
/// names stored as the bytes they are.
/// </summary>
public sealed class MariaDbMetaStoreTests : MetaStoreConformance
{
    private const long Root = 1;
    private const long FileMode = FileModes.Regular | 0x1A4; // 0644
    private const long DirMode = FileModes.Directory | 0x1ED; // 0755
    private readonly MariaDbServer _server = MariaDbServer.Shared;
    private readonly string _database = $"meta_{Guid.NewGuid():N}";

    public MariaDbMetaStoreTests() => _server.CreateDatabase(_database);

    protected override IMetaStore CreateStore(long now) => Open(Options());

    protected override object? ExecuteDirectly(string sql)
    {
        using var connection = new MySqlConnection(_server.ConnectionStringFor(_database));
        connection.Open();
        using var command = new MySqlCommand(sql, connection);
        return command.ExecuteScalar();
    }

    public override void Dispose()
    {
        base.Dispose();
        using var connection = new MySqlConnection(_server.ConnectionStringFor(""));
        connection.Open();
        using var drop = new MySqlCommand($"DROP DATABASE `{_database}`", connection);
        drop.ExecuteNonQuery();
    }

    [Fact]
    public void Describes_its_server_without_the_password()
    {
        using var store = Open(Options());
        Assert.Equal($"mysql 127.0.0.1:{_server.Port}/{_database}", store.Description);
        Assert.DoesNotContain(_server.Password, store.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void A_server_database_is_shared()
    {
        using var store = Open(Options());
        Assert.True(store.IsShared);
    }

    [Fact]
    public void A_transaction_a_frozen_client_leaves_idle_is_aborted_and_frees_its_row_locks()
    {
        using (Open(Options()))
        {
            // The schema and the root inode now exist.
        }
        using var dialect = new MySqlDialect(Options());
        using var lease = dialect.Rent();
        var frozen = lease.Connection;
        var transaction = frozen.BeginTransaction();
        using (var take = frozen.CreateCommand())
        {
            take.Transaction = transaction;
            take.CommandText = "SELECT id FROM inodes WHERE id = 1 FOR UPDATE";
            take.ExecuteScalar();
        }

        // The client goes silent inside its transaction, as a stopped host would.
        Thread.Sleep(TimeSpan.FromSeconds(7));

        using var other = new MySqlConnection(_server.ConnectionStringFor(_database));
        other.Open();
        using var update = new MySqlCommand("SET SESSION innodb_lock_wait_timeout = 1; UPDATE inodes SET atime = atime + 1 WHERE id = 1", other);
        Assert.Equal(1, update.ExecuteNonQuery());
    }

    [Fact]
    public void An_unreachable_server_fails_fast_and_is_named()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        var clock = Stopwatch.StartNew();

        var error = Assert.Throws<MetaStoreException>(() => Open(Options() with { Port = port, ConnectTimeout = TimeSpan.FromSeconds(1) }));

        Assert.Contains($"mysql 127.0.0.1:{port}/{_database}", error.Message, StringComparison.Ordinal);
        Assert.Contains("unreachable", error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_wrong_password_is_refused_and_names_the_server_and_user()
    {
        var wrong = "not-" + _server.Password;

        var error = Assert.Throws<MetaStoreException>(() => Open(Options() with { Password = wrong }));

        Assert.Contains($"mysql 127.0.0.1:{_server.Port}/{_database}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{_server.User}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Access denied", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hosts_opening_a_new_database_at_once_agree_on_one_filesystem()
    {
        var stores = new IMetaStore?[6];
        try
        {
            Parallel.For(0, stores.Length, i => stores[i] = Open(Options()));
            Assert.Single(stores.Select(s => s!.FilesystemId).Distinct());
            Assert.Equal(1L, Count("filesystem"));
            Assert.Equal(1L, Count("inodes"));
        }
        finally
        {
            foreach (var store in stores) store?.Dispose();
        }
    }

    /// <summary>
    /// Eight writers in one directory: each creates 200 files and renames each, links every
    /// tenth, makes a directory every 25th, and every 20th renames its file onto one name they
    /// all fight over. Every outcome is known in advance except which file wins "shared".
    /// </summary>
    [Fact]
    public void Concurrent_writers_in_one_directory_leave_exactly_the_expected_tree()
    {
        const int Threads = 8, Files = 200;
        using var store = Open(Options());
        var failures = new List<string>();

        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            void Expect(int status, string what)
            {
                if (status != 0) lock (failures) failures.Add($"{what}: errno {status}");
            }
            for (var i = 0; i < Files; i++)
            {
                Expect(store.Create(Root, N($"t{t}-{i}"), new NewNode(FileMode, t, t), i, out var file), $"create t{t}-{i}");
                if (i % 20 == 0)
                {
                    Expect(store.Rename(Root, N($"t{t}-{i}"), Root, N("shared"), RenameFlags.None, i, out _), $"rename t{t}-{i} onto shared");
                    continue;
                }
                Expect(store.Rename(Root, N($"t{t}-{i}"), Root, N($"t{t}-{i}.done"), RenameFlags.None, i, out _), $"rename t{t}-{i}");
                if (i % 10 == 0) Expect(store.Link(file.Id, Root, N($"t{t}-{i}.link"), i, out _), $"link t{t}-{i}");
                if (i % 25 == 0) Expect(store.Create(Root, N($"t{t}-d{i}"), new NewNode(DirMode, t, t), i, out _), $"mkdir t{t}-d{i}");
            }
        });

        Assert.Empty(failures);
        var expected = new Dictionary<string, long> { ["shared"] = 1 };
        for (var t = 0; t < Threads; t++)
        {
            for (var i = 0; i < Files; i++)
            {
                if (i % 20 == 0) continue;
                var linked = i % 10 == 0;
                expected[$"t{t}-{i}.done"] = linked ? 2 : 1;
                if (linked) expected[$"t{t}-{i}.link"] = 2;
                if (i % 25 == 0) expected[$"t{t}-d{i}"] = 2;
            }
        }
        var entries = ReadAll(store, Root);
        var tree = entries.ToDictionary(e => Encoding.UTF8.GetString(e.Name), e => e.Inode.Nlink);
        Assert.Equal(entries.Count, tree.Count);
        Assert.Equal(expected.OrderBy(e => e.Key, StringComparer.Ordinal), tree.OrderBy(e => e.Key, StringComparer.Ordinal));
        var directories = Threads * Enumerable.Range(0, Files).Count(i => i % 25 == 0 && i % 20 != 0);
        Assert.Equal(2 + directories, store.GetInode(Root)!.Nlink);
        // Each file that lost the fight for "shared" is an inode without names.
        var fights = Threads * (Files / 20);
        Assert.Equal(fights - 1, store.OrphanInodes().Count);
        Assert.Equal(1 + Threads * Files + directories, store.Usage().Inodes);
    }

    [Fact]
    public void Names_are_stored_as_their_bytes_and_only_equal_bytes_match()
    {
        using var store = Open(Options());
        // Each differs from the others only where a text collation would call them equal.
        byte[][] names =
        [
            N("A"), N("a"), N("a "), N("ß"), N("ss"), N("é"), N("e\u0301"),
            N("😀"), N("\U0001F600\U0001F3FD"), [0xFF, 0xFE], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0x61, 0x80],
        ];
        foreach (var name in names) Assert.Equal(0, store.Create(Root, name, new NewNode(FileMode, 0, 0), 1, out _));

        var stored = Query($"SELECT HEX(name) FROM dirents WHERE parent = {Root}");
        Assert.Equal(names.Select(Convert.ToHexString).Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));
        Assert.Equal(names.Length, names.Select(n => store.Lookup(Root, n)!.Id).Distinct().Count());
        Assert.Null(store.Lookup(Root, N("A ")));
        Assert.Null(store.Lookup(Root, [0xFF]));

        // A name that is not UTF-8 survives a rename, and names xattrs and symlink targets too.
        byte[] invalid = [0x80, 0xFF, 0x41, 0xC0];
        Assert.Equal(0, store.Rename(Root, [0xFF, 0xFE], Root, invalid, RenameFlags.None, 2, out _));
        Assert.Equal(invalid, ReadAll(store, Root).Single(e => e.Name.AsSpan().SequenceEqual(invalid)).Name);
        Assert.Equal(0, store.Create(Root, N("link"), new NewNode(FileModes.Symlink | 0x1FF, 0, 0, Target: invalid), 3, out var link));
        Assert.Equal(invalid, store.GetInode(link.Id)!.Target);
        Assert.Equal(0, store.SetXattr(link.Id, N("user.😀"), invalid, XattrFlags.None, 4));
        Assert.Equal(0, store.SetXattr(link.Id, N("user.A"), [1], XattrFlags.Create, 4));
        Assert.Equal(0, store.SetXattr(link.Id, N("user.a"), [2], XattrFlags.Create, 4));
        Assert.Equal(0, store.GetXattr(link.Id, N("user.😀"), out var value));
        Assert.Equal(invalid, value);
        store.ListXattrs(link.Id, out var xattrs);
        Assert.Equal(["user.A", "user.a", "user.😀"], xattrs.Select(x => Encoding.UTF8.GetString(x)));
    }

    private MySqlOptions Options() => new()
    {
        Host = _server.Host,
        Port = _server.Port,
        Database = _database,
        User = _server.User,
        Password = _server.Password,
    };

    private static SqlMetaStore Open(MySqlOptions options) => new(new MySqlDialect(options), 1, 0, 0);

    private static List<DirectoryEntry> ReadAll(IMetaStore store, long directory)
    {
        var entries = new List<DirectoryEntry>();
        for (long cookie = 0; ;)
        {
            var page = store.ReadDirectory(directory, cookie, 100);
            if (page.Count == 0) return entries;
            entries.AddRange(page);
            cookie = page[^1].Cookie;
        }
    }

    private long Count(string table) => Convert.ToInt64(ExecuteDirectly($"SELECT COUNT(*) FROM {table}"), System.Globalization.CultureInfo.InvariantCulture);

    private List<string> Query(string sql)
    {
        using var connection = new MySqlConnection(_server.ConnectionStringFor(_database));
        connection.Open();
        using var command = new MySqlCommand(sql, connection);
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read()) rows.Add(reader.GetString(0));
        return rows;
    }

    private static byte[] N(string name) => Encoding.UTF8.GetBytes(name);
}
