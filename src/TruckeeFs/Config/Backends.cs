using System.Net;
using Microsoft.Extensions.Logging;
using TruckeeFs.Cache;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;
using TruckeeFs.Vfs;

namespace TruckeeFs.Config;

/// <summary>
/// The backends a configuration selects, each seam on its own: <c>sql_host</c> selects
/// MySQL/MariaDB metadata, <c>redis_host</c> Redis coordination, <c>tahoe_url</c> or
/// <c>rootcap</c> Tahoe-LAFS contents; whatever is not selected uses the embedded
/// implementation (SQLite in data_dir, in-process coordination, a local content folder).
/// </summary>
public sealed class Backends : IAsyncDisposable
{
    private Backends(IMetaStore meta, IContentStore content, ICoordinator coordinator, ITreeMirror mirror, VfsOptions options, string dataDirectory, bool usesDataDirectory)
    {
        UsesDataDirectory = usesDataDirectory;
        Meta = meta;
        Content = content;
        Coordinator = coordinator;
        Mirror = mirror;
        Options = options;
        DataDirectory = dataDirectory;
    }

    /// <summary>The tree mirror's marker in a mount's cache directory (see <see cref="TahoeTreeMirror"/>).</summary>
    public const string MirrorMarkerName = "mirror.dirty";

    public IMetaStore Meta { get; }
    public IContentStore Content { get; }
    public ICoordinator Coordinator { get; }

    /// <summary>The MIRROR-mode tree mirror, or <see cref="NullTreeMirror"/> (FLAT).</summary>
    public ITreeMirror Mirror { get; }

    public VfsOptions Options { get; }
    public string DataDirectory { get; }

    /// <summary>True when data_dir holds something: the SQLite metadata or the local content store.</summary>
    public bool UsesDataDirectory { get; }

    /// <summary>The embedded default's home: $XDG_DATA_HOME/truckeefs, else ~/.local/share/truckeefs.</summary>
    public static string DefaultDataDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
            : xdg;
        return Path.Combine(root, "truckeefs");
    }

    /// <summary>Whether the configuration selects Tahoe for contents: tahoe_url or rootcap given (a default does not count).</summary>
    public static bool SelectsTahoe(Configuration configuration) => configuration.IsGiven(ConfigKeys.TahoeUrl) || configuration.IsGiven(ConfigKeys.RootCap);

    /// <summary>
    /// Opens what <paramref name="configuration"/> selects, creating the embedded stores and the
    /// metadata schema on first use. Every key is checked before any server is contacted.
    /// </summary>
    /// <exception cref="ConfigException">A value is unusable, or Tahoe is selected without a rootcap.</exception>
    /// <exception cref="MetaStoreException">The metadata database is unreachable or failed (the message names it).</exception>
    /// <exception cref="CoordinatorException">Redis is unreachable (the message names it).</exception>
    /// <exception cref="ContentStoreException">The Tahoe gateway is unreachable or failed (the message names it).</exception>
    /// <param name="configuration">The merged configuration.</param>
    /// <param name="mirrorLog">Where the MIRROR-mode tree mirror reports failures.</param>
    /// <param name="mounting">
    /// For a mount: the tree mirror then keeps its marker in the cache directory and tells
    /// (<see cref="ITreeMirror.NeedsResync"/>) whether the last mount with it stopped uncleanly.
    /// </param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    public static async Task<Backends> OpenAsync(Configuration configuration, ILogger mirrorLog, bool mounting = false, CancellationToken cancellationToken = default)
    {
        var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? DefaultDataDirectory());
        var cacheDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.CacheDir) ?? Path.Combine(dataDirectory, "cache"));
        var blockSize = configuration.GetSize(ConfigKeys.BlockSize);
        if (blockSize < 64 << 10 || blockSize > 64 << 20)
            throw configuration.Problem(ConfigKeys.BlockSize, "is outside 64k to 64m");
        var tahoe = ReadTahoeOptions(configuration, requireRootCap: true);
        var mirrored = IsMirrored(configuration, tahoe);
        var redis = ReadRedisOptions(configuration);
        var resetRedis = configuration.GetBoolean(ConfigKeys.ResetRedis);
        // A mount that owns its metadata alone changes it only through its own kernel, which keeps
        // its caches coherent; mounts coordinating through Redis invalidate each other's kernel
        // caches on every change: both may cache long. Mounts sharing a database without Redis
        // see each other's changes only when those caches expire: keep them short.
        var uninformed = configuration.GetText(ConfigKeys.SqlHost) is not null && redis is null;
        double CacheTimeout(ConfigKey key) => configuration.GetText(key) is null ? (uninformed ? 1 : 60) : configuration.GetSeconds(key);
        var heartbeat = configuration.GetSeconds(ConfigKeys.SessionHeartbeat);
        var sessionTimeout = configuration.GetSeconds(ConfigKeys.SessionTimeout);
        if (sessionTimeout < 2 * heartbeat)
            throw configuration.Problem(ConfigKeys.SessionTimeout, $"is less than twice session_heartbeat ({heartbeat} s): a live mount would be declared dead");
        var options = new VfsOptions
        {
            BlockSize = blockSize,
            CacheDirectory = cacheDirectory,
            AttributeTimeout = CacheTimeout(ConfigKeys.AttrTimeout),
            EntryTimeout = CacheTimeout(ConfigKeys.EntryTimeout),
            Cache = new CacheOptions
            {
                Maintenance = configuration.GetBoolean(ConfigKeys.CacheMaintenance),
                Ttl = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.CacheTtl)),
                SizeBudget = configuration.GetSize(ConfigKeys.CacheSize),
                MinFree = configuration.GetSize(ConfigKeys.CacheMinFree),
                Interval = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.Sleep)),
                Nice = configuration.GetInteger(ConfigKeys.Nice) is var nice and <= 19 ? (int)nice : throw configuration.Problem(ConfigKeys.Nice, "is above 19 (the lowest priority)"),
                ReadAhead = 2 * (tahoe?.MaxConnections ?? 1),
            },
            SessionHeartbeat = TimeSpan.FromSeconds(heartbeat),
            SessionTimeout = TimeSpan.FromSeconds(sessionTimeout),
            CommitWaitTimeout = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.CommitWaitTimeout)),
        };
        Directory.CreateDirectory(cacheDirectory);

        var meta = OpenMetaStore(configuration, dataDirectory);
        IContentStore? content = null;
        ICoordinator? coordinator = null;
        try
        {
            if (tahoe is null)
            {
                content = new LocalContentStore(Path.Combine(dataDirectory, "contents"));
            }
            else
            {
                var store = new TahoeContentStore(tahoe);
                content = store;
                await CheckRootCapAsync(configuration, store.Client, tahoe.RootCap!, cancellationToken).ConfigureAwait(false);
            }
            if (redis is null)
            {
                coordinator = new InProcessCoordinator();
            }
            else
            {
                redis.KeyPrefix = RedisKeyPrefix(meta.FilesystemId);
                coordinator = await RedisCoordinator.ConnectAsync(redis, cancellationToken).ConfigureAwait(false);
            }
            if (resetRedis) await coordinator.ResetAsync(cancellationToken).ConfigureAwait(false);
            ITreeMirror mirror = mirrored
                ? new TahoeTreeMirror(((TahoeContentStore)content).Client, tahoe!.RootCap!, mirrorLog, disposeTimeout: tahoe.NetTimeout * 3,
                    uncleanStopMarker: mounting ? Path.Combine(cacheDirectory, MirrorMarkerName) : null)
                : NullTreeMirror.Instance;
            var usesDataDirectory = !configuration.IsGiven(ConfigKeys.SqlHost) || tahoe is null;
            return new Backends(meta, content, coordinator, mirror, options, dataDirectory, usesDataDirectory);
        }
        catch
        {
            if (coordinator is not null) await coordinator.DisposeAsync().ConfigureAwait(false);
            if (content is not null) await content.DisposeAsync().ConfigureAwait(false);
            meta.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the metadata store the configuration selects (MySQL/MariaDB when sql_host is given,
    /// else SQLite in <paramref name="dataDirectory"/>), creating or migrating its schema.
    /// </summary>
    public static IMetaStore OpenMetaStore(Configuration configuration, string dataDirectory)
    {
        SqlDialect dialect;
        if (configuration.IsGiven(ConfigKeys.SqlHost))
        {
            dialect = new MySqlDialect(ReadMySqlOptions(configuration));
        }
        else
        {
            Directory.CreateDirectory(dataDirectory);
            dialect = new SqliteDialect(Path.Combine(dataDirectory, "metadata.db"));
        }
        try
        {
            return new SqlMetaStore(dialect, (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100, Posix.GetUid(), Posix.GetGid());
        }
        catch
        {
            (dialect as IDisposable)?.Dispose();
            throw;
        }
    }

    private static MySqlOptions ReadMySqlOptions(Configuration configuration)
    {
        var address = configuration.GetAddress(ConfigKeys.SqlHost, ConfigKeys.SqlPort);
        var database = configuration.GetText(ConfigKeys.SqlDb) ?? "";
        if (database.Length == 0) throw configuration.Problem(ConfigKeys.SqlDb, "is empty");
        return new MySqlOptions
        {
            Host = address.Host,
            Port = address.Port,
            Database = database,
            User = configuration.GetText(ConfigKeys.SqlUser) ?? "",
            Password = configuration.GetText(ConfigKeys.SqlPass),
            Ssl = configuration.GetBoolean(ConfigKeys.SqlSsl),
            ConnectTimeout = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.NetTimeout)),
        };
    }

    /// <summary>
    /// Whether the selected metadata database already holds a TruckeeFS schema: for
    /// <c>truckeefs init</c> to say what it created. Null when that cannot be told (the server
    /// does not answer; opening the store then reports why).
    /// </summary>
    public static bool? MetadataExists(Configuration configuration, string dataDirectory)
    {
        if (!configuration.IsGiven(ConfigKeys.SqlHost)) return File.Exists(Path.Combine(dataDirectory, "metadata.db"));
        var options = ReadMySqlOptions(configuration);
        MySqlDriver.Prepare();
        var builder = new MySql.Data.MySqlClient.MySqlConnectionStringBuilder
        {
            Server = options.Host,
            Port = (uint)options.Port,
            UserID = options.User,
            Password = options.Password ?? "",
            SslMode = options.Ssl ? MySql.Data.MySqlClient.MySqlSslMode.Required : MySql.Data.MySqlClient.MySqlSslMode.None,
            ConnectionTimeout = (uint)Math.Max(1, options.ConnectTimeout.TotalSeconds),
            Pooling = false,
        };
        try
        {
            using var connection = new MySql.Data.MySqlClient.MySqlConnection(builder.ConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = @database AND table_name = 'filesystem'";
            command.Parameters.AddWithValue("@database", options.Database);
            return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0;
        }
        catch (MySql.Data.MySqlClient.MySqlException)
        {
            return null;
        }
    }

    /// <summary>
    /// The Tahoe gateway settings when the configuration selects Tahoe, else null. With
    /// <paramref name="requireRootCap"/> a missing rootcap is an error that says how to make one.
    /// </summary>
    public static TahoeOptions? ReadTahoeOptions(Configuration configuration, bool requireRootCap)
    {
        if (!SelectsTahoe(configuration)) return null;
        var rootCap = configuration.GetText(ConfigKeys.RootCap)?.Trim();
        if (rootCap is null && requireRootCap)
        {
            throw new ConfigException(
                $"rootcap: Tahoe-LAFS is selected (tahoe_url from {configuration.SourceOf(ConfigKeys.TahoeUrl)}) but no rootcap is set. " +
                "Run `truckeefs init` with the same configuration to create one, then put its `rootcap: URI:DIR2:...` line into the configuration file.");
        }
        if (rootCap is not null && !rootCap.StartsWith("URI:DIR2:", StringComparison.Ordinal) && !rootCap.StartsWith("URI:DIR2-MDMF:", StringComparison.Ordinal))
        {
            throw configuration.Problem(ConfigKeys.RootCap, rootCap.StartsWith("URI:DIR2-", StringComparison.Ordinal)
                ? "is not a writable directory cap (read-only caps start URI:DIR2-RO:); give the URI:DIR2: cap `truckeefs init` printed"
                : "is not a writable Tahoe directory cap (URI:DIR2:...)");
        }
        return new TahoeOptions
        {
            TahoeUrl = configuration.GetUrl(ConfigKeys.TahoeUrl),
            RootCap = rootCap,
            NetTimeout = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.NetTimeout)),
            MaxConnections = (int)Math.Min(configuration.GetInteger(ConfigKeys.MaxConnections), 1024),
            AuthToken = configuration.GetText(ConfigKeys.AuthToken),
        };
    }

    public async ValueTask DisposeAsync()
    {
        await Mirror.DisposeAsync().ConfigureAwait(false);
        await Coordinator.DisposeAsync().ConfigureAwait(false);
        await Content.DisposeAsync().ConfigureAwait(false);
        Meta.Dispose();
    }

    /// <summary>Every Redis key and channel of the filesystem <paramref name="filesystemId"/> starts with this.</summary>
    public static string RedisKeyPrefix(string filesystemId) => $"truckeefs:{filesystemId}:";

    /// <summary>Whether backend_storage_strategy is MIRROR, which needs Tahoe (<paramref name="tahoe"/> not null).</summary>
    public static bool IsMirrored(Configuration configuration, TahoeOptions? tahoe)
    {
        var mirrored = configuration.GetChoice(ConfigKeys.BackendStorageStrategy) == "MIRROR";
        if (mirrored && tahoe is null)
            throw configuration.Problem(ConfigKeys.BackendStorageStrategy, "needs Tahoe-LAFS contents: give tahoe_url and rootcap");
        return mirrored;
    }

    /// <summary>The Redis settings when redis_host is given, else null; the caller sets <see cref="RedisOptions.KeyPrefix"/>.</summary>
    public static RedisOptions? ReadRedisOptions(Configuration configuration)
    {
        if (!configuration.IsGiven(ConfigKeys.RedisHost)) return null;
        var address = configuration.GetAddress(ConfigKeys.RedisHost, ConfigKeys.RedisPort);
        var timeout = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.NetTimeout));
        return new RedisOptions
        {
            Host = address.Host,
            Port = address.Port,
            Database = (int)Math.Min(configuration.GetInteger(ConfigKeys.RedisDb), int.MaxValue),
            SemaphoreTimeout = TimeSpan.FromSeconds(configuration.GetSeconds(ConfigKeys.RedisSemaphoreTimeout)),
            OperationTimeout = timeout,
            // Connecting is quick or not happening: a dead server should not hold the mount up for long.
            ConnectTimeout = timeout < TimeSpan.FromSeconds(10) ? timeout : TimeSpan.FromSeconds(10),
        };
    }

    /// <summary>Reaching the gateway at mount time turns a wrong URL or cap into one clear error instead of EIO on every file.</summary>
    private static async Task CheckRootCapAsync(Configuration configuration, TahoeClient client, string rootCap, CancellationToken cancellationToken)
    {
        TahoeDirectoryListing listing;
        try
        {
            listing = await client.ListAsync(rootCap, cancellationToken).ConfigureAwait(false);
        }
        catch (TahoeRequestException e) when (e.Status is HttpStatusCode.BadRequest or HttpStatusCode.NotFound)
        {
            throw configuration.Problem(ConfigKeys.RootCap, $"is not usable: {e.Message}");
        }
        if (listing.WriteCap is null) throw configuration.Problem(ConfigKeys.RootCap, "is a read-only directory cap; give the writable URI:DIR2: cap");
    }
}
