using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Mount;

/// <summary>
/// Programs users run on a mount, doing what they do there: a database with its write-ahead log
/// and shared-memory index, a shared writable mapping, git, tar. Each checks its result through
/// the program's own verification and again after a remount, on the embedded default and on
/// the production backends (where the second mount starts with empty local directories, so that
/// everything comes from MariaDB and Tahoe, and the locks are MariaDB's).
/// </summary>
public sealed class ApplicationMountTests
{
    private const int BlockSize = 64 << 10;

    [Theory]
    [InlineData(Backend.Embedded)]
    [InlineData(Backend.Production)]
    public async Task A_sqlite_database_in_wal_mode_keeps_every_committed_row_across_a_remount(string backend)
    {
        // SQLite maps its -shm index with MAP_SHARED and guards it with byte-range POSIX locks:
        // both go through the mount, and a second connection reads through them.
        SqliteLibrary.EnsureLoaded();
        const int Rows = 300;
        await UseThenCheckAfterRemountAsync(backend, mounted =>
        {
            using var writer = OpenDatabase($"{mounted}/app.db");
            using var reader = OpenDatabase($"{mounted}/app.db");
            Assert.Equal("wal", Scalar(writer, "PRAGMA journal_mode=WAL"));
            Execute(writer, "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
            for (var i = 0; i < Rows; i++)
            {
                using var transaction = writer.BeginTransaction();
                using var insert = writer.CreateCommand();
                insert.CommandText = "INSERT INTO t (id, body) VALUES ($id, $body)";
                insert.Parameters.AddWithValue("$id", i);
                insert.Parameters.AddWithValue("$body", RowBody(i));
                insert.ExecuteNonQuery();
                transaction.Commit();
                if (i % 50 == 49) Assert.Equal((long)i + 1, Scalar(reader, "SELECT COUNT(*) FROM t"));
            }
            Assert.Equal("ok", Scalar(reader, "PRAGMA integrity_check"));
            // Half the rows go into the database file, the rest stay in the log until the reopen.
            Execute(writer, "PRAGMA wal_checkpoint(TRUNCATE)");
            Execute(writer, "UPDATE t SET body = zeroblob(10) WHERE id >= 250");
        }, mounted =>
        {
            using var database = OpenDatabase($"{mounted}/app.db");
            Assert.Equal("ok", Scalar(database, "PRAGMA integrity_check"));
            using var rows = database.CreateCommand();
            rows.CommandText = "SELECT id, body FROM t ORDER BY id";
            using var reader = rows.ExecuteReader();
            var id = 0;
            for (; reader.Read(); id++)
            {
                Assert.Equal(id, reader.GetInt32(0));
                Assert.Equal(id >= 250 ? new byte[10] : RowBody(id), (byte[])reader.GetValue(1));
            }
            Assert.Equal(Rows, id);
        });
    }

    [Theory]
    [InlineData(Backend.Embedded)]
    [InlineData(Backend.Production)]
    public async Task Writes_through_a_shared_mapping_reach_the_file_and_survive_a_remount(string backend)
    {
        var expected = RandomNumberGenerator.GetBytes(3 * BlockSize + 1000);
        // Across the first block boundary, and the file's last bytes.
        var patches = new (long Offset, byte[] Bytes)[] { (BlockSize - 100, RandomNumberGenerator.GetBytes(300)), (expected.Length - 50, RandomNumberGenerator.GetBytes(50)) };
        await UseThenCheckAfterRemountAsync(backend, mounted =>
        {
            var path = $"{mounted}/mapped";
            File.WriteAllBytes(path, expected);
            using (var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
            using (var view = map.CreateViewAccessor(0, expected.Length))
            {
                // What write(2) put there is what the mapping shows.
                var seen = new byte[expected.Length];
                view.ReadArray(0, seen, 0, seen.Length);
                Assert.Equal(expected, seen);
                foreach (var (offset, bytes) in patches)
                {
                    view.WriteArray(offset, bytes, 0, bytes.Length);
                    bytes.CopyTo(expected, offset);
                }
                view.Flush();
            }
            // Another process reads the file with read(2).
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expected)), Run("sha256sum", path).Split(' ')[0]);
        }, mounted => Assert.Equal(expected, File.ReadAllBytes($"{mounted}/mapped")));
    }

    [Theory]
    [InlineData(Backend.Embedded)]
    [InlineData(Backend.Production)]
    public async Task Git_commits_clones_repacks_and_verifies_a_repository_on_the_mount(string backend)
    {
        await UseThenCheckAfterRemountAsync(backend, mounted =>
        {
            var origin = $"{mounted}/origin";
            Directory.CreateDirectory(origin);
            Git(origin, "init", "-q");
            for (var commit = 0; commit < 3; commit++)
            {
                for (var i = 0; i < 20; i++) File.WriteAllBytes($"{origin}/file{i}.bin", RandomNumberGenerator.GetBytes(i * 5_000 + commit));
                File.AppendAllText($"{origin}/log.txt", $"commit {commit}\n");
                Git(origin, "add", "-A");
                Git(origin, "commit", "-q", "-m", $"commit {commit}");
            }
            Git(origin, "gc", "-q");
            Git(mounted, "clone", "-q", origin, $"{mounted}/clone");
            Assert.Equal(Git(origin, "rev-parse", "HEAD"), Git($"{mounted}/clone", "rev-parse", "HEAD"));
        }, mounted =>
        {
            foreach (var repository in (string[])["origin", "clone"])
            {
                Git($"{mounted}/{repository}", "fsck", "--full", "--strict");
                Assert.Equal("", Git($"{mounted}/{repository}", "status", "--porcelain"));
            }
            Assert.Equal("commit 0\ncommit 1\ncommit 2\n", File.ReadAllText($"{mounted}/clone/log.txt"));
        });
    }

    [Theory]
    [InlineData(Backend.Embedded)]
    [InlineData(Backend.Production)]
    public async Task A_tree_tarred_into_the_mount_and_out_again_is_unchanged_in_contents_modes_times_and_links(string backend)
    {
        using var source = TempDirectory.CreateWithXattrsAndLinks("app-tar-source");
        using var back = TempDirectory.CreateWithXattrsAndLinks("app-tar-back");
        var tree = $"{source.Path}/tree";
        Directory.CreateDirectory($"{tree}/sub/deeper");
        for (var i = 0; i < 12; i++) File.WriteAllBytes($"{tree}/sub/f{i}", RandomNumberGenerator.GetBytes(i * 23_000));
        File.WriteAllBytes($"{tree}/empty", []);
        Assert.Equal(0, Sys.Symlink("sub/f3", $"{tree}/link"));
        Assert.Equal(0, Sys.Link($"{tree}/sub/f5", $"{tree}/sub/deeper/hard"));
        Assert.Equal(0, Sys.Chmod($"{tree}/sub/f1", 0x1ED)); // 0755
        Assert.Equal(0, Sys.Chmod($"{tree}/sub/f2", 0x100)); // 0400
        Assert.Equal(0, Sys.Chmod($"{tree}/sub/deeper", 0x1C0)); // 0700
        File.SetLastWriteTimeUtc($"{tree}/sub/f4", new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc));

        // POSIX (pax) archives keep times to the nanosecond.
        await UseThenCheckAfterRemountAsync(backend,
            mounted => Run("sh", "-c", $"tar -C '{source.Path}' --format=posix -cf - tree | tar -C '{mounted}' -xpf -"),
            mounted => Run("sh", "-c", $"tar -C '{mounted}' --format=posix -cf - tree | tar -C '{back.Path}' -xpf -"));
        // diff compares contents and symlink targets; find lists each entry's type, mode, size,
        // link count and modification time (directories' times move as tar fills them: left out).
        Run("diff", "-r", "--no-dereference", tree, $"{back.Path}/tree");
        const string Listing = "find . -printf '%P %y %m %s %n %l' \\( -type d -printf '\\n' -o -printf ' %T@\\n' \\) | sort";
        Assert.Equal(Run("sh", "-c", $"cd '{tree}' && {Listing}"), Run("sh", "-c", $"cd '{back.Path}/tree' && {Listing}"));
        Assert.Equal(0, Sys.Stat($"{back.Path}/tree/sub/f5", out var linked));
        Assert.Equal(0, Sys.Stat($"{back.Path}/tree/sub/deeper/hard", out var other));
        Assert.Equal(linked.Ino, other.Ino);
    }

    /// <summary>
    /// Runs <paramref name="use"/> on a mount of a new filesystem on <paramref name="backend"/>
    /// (given the mount's path), unmounts it cleanly, and runs <paramref name="check"/> on the
    /// next mount of the same filesystem.
    /// </summary>
    private static async Task UseThenCheckAfterRemountAsync(string backend, Action<string> use, Action<string> check)
    {
        await using var filesystem = await Backend.CreateAsync(backend);
        await using (var mount = await TruckeeFsMount.StartAsync(filesystem.Options()))
        {
            use(mount.Path);
            Assert.Equal(0, await mount.UnmountAsync());
        }
        await using var again = await TruckeeFsMount.StartAsync(filesystem.Options());
        check(again.Path);
        Assert.Equal(0, await again.UnmountAsync());
    }

    /// <summary>A filesystem to mount again and again, on the backends <see cref="Embedded"/> or <see cref="Production"/> names.</summary>
    private sealed class Backend : IAsyncDisposable
    {
        public const string Embedded = "embedded";
        public const string Production = "production";
        private readonly TempDirectory? _data;
        private readonly ProductionFilesystem? _production;

        private Backend(TempDirectory? data, ProductionFilesystem? production)
        {
            _data = data;
            _production = production;
        }

        public static async Task<Backend> CreateAsync(string name) => name switch
        {
            Embedded => new Backend(TempDirectory.Create("app-data"), null),
            Production => new Backend(null, await ProductionFilesystem.CreateAsync()),
            _ => throw new ArgumentException($"no backend {name}", nameof(name)),
        };

        /// <summary>Options of the next mount: the embedded one keeps its data directory; a production one gets new local directories each time.</summary>
        public TruckeeFsMountOptions Options() =>
            _production?.Options() ?? new TruckeeFsMountOptions { DataDir = _data!.Path, ExtraArgs = ["--block-size", "64k"] };

        public async ValueTask DisposeAsync()
        {
            _data?.Dispose();
            if (_production is not null) await _production.DisposeAsync();
        }
    }

    private static byte[] RowBody(int id)
    {
        var body = new byte[500 + id * 37 % 9000];
        new Random(id).NextBytes(body);
        return body;
    }

    private static SqliteConnection OpenDatabase(string path)
    {
        // No pooling: a pooled connection would keep the file open and the mount busy.
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static string Git(string directory, params string[] arguments) =>
        Run("git", ["-C", directory, "-c", "user.name=TruckeeFS tests", "-c", "user.email=tests@truckeefs.invalid", "-c", "init.defaultBranch=main", .. arguments]);

    /// <summary>Runs a program to completion and returns its standard output trimmed; a non-zero exit fails the test with its error output.</summary>
    private static string Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {error.Result}");
        return output.Trim();
    }
}
