using System.Text.Json;
using Microsoft.Data.Sqlite;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Operations;

/// <summary>
/// An embedded-default filesystem (SQLite, local contents) in folders of its own, mounted and
/// examined with the real executable, and its database open to tests that damage it on purpose.
/// </summary>
internal sealed class EmbeddedFilesystem : IAsyncDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("ops");

    public EmbeddedFilesystem()
    {
        Directory.CreateDirectory(DataDir);
        Directory.CreateDirectory(CacheDir);
    }

    public string DataDir => Path.Combine(_directory.Path, "data");

    public string CacheDir => Path.Combine(_directory.Path, "cache");

    public string ContentsDir => Path.Combine(DataDir, "contents");

    /// <summary>The flags that point a verb at this filesystem.</summary>
    public string[] Flags => ["--data-dir", DataDir, "--cache-dir", CacheDir];

    /// <summary>Mounts it (64 KiB blocks, so a small file has several) with <paramref name="extra"/> flags.</summary>
    public Task<TruckeeFsMount> MountAsync(params string[] extra) => TruckeeFsMount.StartAsync(new TruckeeFsMountOptions
    {
        DataDir = DataDir,
        CacheDir = CacheDir,
        ExtraArgs = ["--block-size", "64k", .. extra],
    });

    /// <summary><c>truckeefs VERB ARGS --data-dir D --cache-dir C</c>.</summary>
    public Task<(int Status, string Output, string Error)> RunAsync(string verb, params string[] arguments) =>
        TruckeeFsCli.RunAsync(null, [verb, .. arguments, .. Flags]);

    /// <summary>Runs <paramref name="sql"/> on the metadata database (while nothing has it mounted).</summary>
    public long Sql(string sql, params (string Name, object Value)[] parameters)
    {
        TruckeeFs.Meta.SqliteLibrary.EnsureLoaded();
        using var connection = new SqliteConnection($"Data Source={Path.Combine(DataDir, "metadata.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        var result = command.ExecuteScalar();
        return result is null or DBNull ? 0 : Convert.ToInt64(result, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The inode a path names, from the database (path relative to the root, "/"-separated).</summary>
    public long InodeOf(string path)
    {
        long inode = 1;
        foreach (var name in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            inode = Sql("SELECT inode FROM dirents WHERE parent = @parent AND name = @name", ("@parent", inode), ("@name", System.Text.Encoding.UTF8.GetBytes(name)));
        return inode;
    }

    /// <summary>The file of a local content object.</summary>
    public string ObjectPath(string cap)
    {
        var hex = cap["LOCAL:".Length..];
        return Path.Combine(ContentsDir, hex[..2], hex);
    }

    public static JsonElement Json(string output) => JsonDocument.Parse(output).RootElement;

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}
