using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MySql.Data.MySqlClient;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Servers;
using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.Production;

/// <summary>
/// One filesystem on the three production backends together: a fresh database on a MariaDB
/// server, a Redis server (the shared ones unless a test that stops them gives its own), and a
/// Tahoe gateway (the test gateway in this process, or a real one when TRUCKEEFS_TEST_TAHOE_URL
/// is set and faults are not needed) with a rootcap made here. <see cref="Options"/> mounts it
/// with the real executable; secrets go through the environment, as a user would keep them off
/// the command line.
/// </summary>
internal sealed class ProductionFilesystem : IAsyncDisposable
{
    private static int _databases;
    private readonly TahoeTestGateway? _ownGateway;

    private ProductionFilesystem(MariaDbServer mariaDb, RedisServer redis, string database, Uri tahoeUrl, TahoeTestGateway? gateway, TahoeClient client, string rootCap)
    {
        MariaDb = mariaDb;
        Redis = redis;
        Database = database;
        TahoeUrl = tahoeUrl;
        _ownGateway = gateway;
        Client = client;
        RootCap = rootCap;
    }

    public MariaDbServer MariaDb { get; }

    public RedisServer Redis { get; }

    /// <summary>The database on <see cref="MariaDb"/>.</summary>
    public string Database { get; }

    public Uri TahoeUrl { get; }

    /// <summary>The in-process gateway, for injecting faults; null when a real gateway is used.</summary>
    public TahoeTestGateway? Gateway => _ownGateway;

    /// <summary>A client for the gateway, with a patient timeout.</summary>
    public TahoeClient Client { get; }

    public string RootCap { get; }

    /// <summary>A connection string for <see cref="Database"/>.</summary>
    public string ConnectionString => MariaDb.ConnectionStringFor(Database);

    /// <param name="faults">True: always the in-process test gateway, so that faults can be injected.</param>
    /// <param name="createDatabase">False: leave the database for truckeefs to create.</param>
    /// <param name="mariaDb">The server for the database; the shared one when null.</param>
    /// <param name="redis">The Redis server; the shared one when null.</param>
    public static async Task<ProductionFilesystem> CreateAsync(bool faults = false, bool createDatabase = true, MariaDbServer? mariaDb = null, RedisServer? redis = null)
    {
        mariaDb ??= MariaDbServer.Shared;
        redis ??= RedisServer.Shared;
        var database = string.Create(CultureInfo.InvariantCulture, $"prod_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}");
        if (createDatabase) mariaDb.CreateDatabase(database);
        TahoeTestGateway? gateway = null;
        Uri url;
        if (!faults && Environment.GetEnvironmentVariable("TRUCKEEFS_TEST_TAHOE_URL") is { Length: > 0 } real)
        {
            url = new Uri(real.EndsWith('/') ? real : real + "/");
        }
        else
        {
            gateway = await TahoeTestGateway.StartAsync();
            url = gateway.BaseUri;
        }
        var client = new TahoeClient(new TahoeOptions { TahoeUrl = url, NetTimeout = TimeSpan.FromSeconds(10) });
        var rootCap = await client.CreateDirectoryAsync();
        return new ProductionFilesystem(mariaDb, redis, database, url, gateway, client, rootCap);
    }

    /// <summary>Flags selecting all three production backends.</summary>
    /// <param name="redis">Whether to coordinate through Redis (<paramref name="redisHost"/>, or the shared server); in-process otherwise.</param>
    public List<string> Arguments(string? redisHost = null, string? sqlHost = null, Uri? tahoeUrl = null, string netTimeout = "10", bool redis = true) =>
    [
        "--sql-host", sqlHost ?? string.Create(CultureInfo.InvariantCulture, $"{MariaDb.Host}:{MariaDb.Port}"),
        "--sql-db", Database,
        "--sql-user", MariaDb.User,
        .. redis ? (string[])["--redis-host", redisHost ?? Redis.EndPoint] : [],
        "--tahoe-url", (tahoeUrl ?? TahoeUrl).ToString(),
        "--net-timeout", netTimeout,
    ];

    /// <summary>The secrets, in the environment.</summary>
    public Dictionary<string, string?> Secrets() => new()
    {
        ["TRUCKEEFS_SQL_PASS"] = MariaDb.Password,
        ["TRUCKEEFS_ROOTCAP"] = RootCap,
    };

    /// <summary>Mount options for this filesystem with 64 KiB blocks and <paramref name="extra"/> flags.</summary>
    public TruckeeFsMountOptions Options(string? dataDir = null, string? cacheDir = null, string netTimeout = "10", bool redis = true, params string[] extra) => new()
    {
        DataDir = dataDir,
        CacheDir = cacheDir,
        ExtraArgs = [.. Arguments(netTimeout: netTimeout, redis: redis), "--block-size", "64k", .. extra],
        Environment = Secrets(),
    };

    /// <summary>
    /// Mount options for MariaDB and Redis with the local content store (no Tahoe URL), as
    /// bench/production.sh mounts: the database at <paramref name="sqlPort"/> on loopback (a
    /// relay in front of it), or at the server itself.
    /// </summary>
    public TruckeeFsMountOptions LocalStoreOptions(string? dataDir = null, string? cacheDir = null, int? sqlPort = null, params string[] extra) => new()
    {
        DataDir = dataDir,
        CacheDir = cacheDir,
        ExtraArgs =
        [
            "--sql-host", string.Create(CultureInfo.InvariantCulture, $"{MariaDb.Host}:{sqlPort ?? MariaDb.Port}"), "--sql-db", Database,
            "--sql-user", MariaDb.User, "--redis-host", Redis.EndPoint, .. extra,
        ],
        Environment = new Dictionary<string, string?> { ["TRUCKEEFS_SQL_PASS"] = MariaDb.Password },
    };

    /// <summary>The filesystem id the metadata database holds (prefixes its Redis keys).</summary>
    public string FilesystemId()
    {
        using var connection = new MySqlConnection(ConnectionString);
        connection.Open();
        using var command = new MySqlCommand("SELECT id FROM filesystem", connection);
        return (string)command.ExecuteScalar()!;
    }

    /// <summary>Runs a statement on the metadata database.</summary>
    public void Execute(string sql)
    {
        using var connection = new MySqlConnection(ConnectionString);
        connection.Open();
        using var command = new MySqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }

    /// <summary>A number from a query on the metadata database.</summary>
    public long Count(string sql)
    {
        using var connection = new MySqlConnection(ConnectionString);
        connection.Open();
        using var command = new MySqlCommand(sql, connection);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>A loopback port nothing listens on (bound, then released).</summary>
    public static int ClosedPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (_ownGateway is not null) await _ownGateway.DisposeAsync();
        using var connection = new MySqlConnection(MariaDb.ConnectionStringFor(""));
        connection.Open();
        using var exists = new MySqlCommand("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = @name", connection);
        exists.Parameters.AddWithValue("@name", Database);
        // Not DROP ... IF EXISTS: its note on a missing database trips MySql.Data on MariaDB (utf8mb3).
        if (Convert.ToInt64(exists.ExecuteScalar(), CultureInfo.InvariantCulture) == 0) return;
        using var drop = new MySqlCommand($"DROP DATABASE `{Database}`", connection);
        drop.ExecuteNonQuery();
    }
}
