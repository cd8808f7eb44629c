using TruckeeFs.Content;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;
using TruckeeFs.Vfs;

namespace TruckeeFs.Config;

/// <summary>The three backends and engine settings a configuration selects.</summary>
public sealed class Backends : IAsyncDisposable
{
    private Backends(IMetaStore meta, IContentStore content, ICoordinator coordinator, VfsOptions options, string dataDirectory)
    {
        Meta = meta;
        Content = content;
        Coordinator = coordinator;
        Options = options;
        DataDirectory = dataDirectory;
    }

    public IMetaStore Meta { get; }
    public IContentStore Content { get; }
    public ICoordinator Coordinator { get; }
    public VfsOptions Options { get; }
    public string DataDirectory { get; }

    /// <summary>The embedded default's home: $XDG_DATA_HOME/truckeefs, else ~/.local/share/truckeefs.</summary>
    public static string DefaultDataDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
            : xdg;
        return Path.Combine(root, "truckeefs");
    }

    /// <summary>Opens what <paramref name="configuration"/> selects, creating the embedded stores on first use.</summary>
    public static Backends Open(Configuration configuration)
    {
        var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? DefaultDataDirectory());
        var cacheDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.CacheDir) ?? Path.Combine(dataDirectory, "cache"));
        var blockSize = configuration.GetSize(ConfigKeys.BlockSize);
        if (blockSize < 64 << 10 || blockSize > 64 << 20)
            throw new ConfigException($"block_size: '{configuration.Display(ConfigKeys.BlockSize)}' from {configuration.SourceOf(ConfigKeys.BlockSize)} is outside 64k to 64m");
        Directory.CreateDirectory(dataDirectory);
        Directory.CreateDirectory(cacheDirectory);

        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var meta = new SqlMetaStore(new SqliteDialect(Path.Combine(dataDirectory, "metadata.db")), now, Posix.GetUid(), Posix.GetGid());
        var content = new LocalContentStore(Path.Combine(dataDirectory, "contents"));
        var coordinator = new InProcessCoordinator();
        var options = new VfsOptions
        {
            BlockSize = blockSize,
            CacheDirectory = cacheDirectory,
            AttributeTimeout = configuration.GetSeconds(ConfigKeys.AttrTimeout),
            EntryTimeout = configuration.GetSeconds(ConfigKeys.EntryTimeout),
        };
        return new Backends(meta, content, coordinator, options, dataDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        await Coordinator.DisposeAsync().ConfigureAwait(false);
        await Content.DisposeAsync().ConfigureAwait(false);
        Meta.Dispose();
    }
}
