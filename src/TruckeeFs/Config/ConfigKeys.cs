namespace TruckeeFs.Config;

/// <summary>What kind of value a key takes, which decides how its text is parsed.</summary>
public enum ConfigKind
{
    Text,
    Path,
    Integer,
    /// <summary>Bytes, with an optional k/m/g/t suffix (powers of 1024).</summary>
    Size,
    /// <summary>true/false/yes/no/1/0.</summary>
    Boolean,
    /// <summary>Seconds, fractions allowed.</summary>
    Seconds,
    /// <summary>A TCP port, 1 to 65535.</summary>
    Port,
    /// <summary>A server: host, host:port, [IPv6] or [IPv6]:port (see <see cref="HostAndPort"/>).</summary>
    Address,
    /// <summary>An absolute http or https URL without user credentials.</summary>
    Url,
    /// <summary>One of <see cref="ConfigKey.Choices"/>, any case.</summary>
    Choice,
}

/// <summary>
/// One configuration key: its canonical snake_case name, kind, default and help. Secret values
/// are never shown (logs, errors and the start-up lines print asterisks instead).
/// </summary>
public sealed record ConfigKey(string Name, ConfigKind Kind, string? Default, string Help, bool IsSecret = false)
{
    /// <summary>The allowed values of a <see cref="ConfigKind.Choice"/> key, in their canonical spelling.</summary>
    public IReadOnlyList<string> Choices { get; init; } = [];

    /// <summary>The smallest value an <see cref="ConfigKind.Integer"/> or <see cref="ConfigKind.Seconds"/> key accepts.</summary>
    public double Minimum { get; init; } = double.MinValue;

    /// <summary>The command-line form, e.g. <c>--cache-dir</c>.</summary>
    public string Flag => "--" + Name.Replace('_', '-');

    /// <summary>The prefixed environment form, e.g. <c>TRUCKEEFS_CACHE_DIR</c> (the plain name works too).</summary>
    public string EnvironmentVariable => "TRUCKEEFS_" + Name.ToUpperInvariant();
}

/// <summary>
/// Every key TruckeeFS understands. Each is accepted from the YAML file, the environment (plain
/// name or TRUCKEEFS_ form) and the command line (--kebab-case); the command line wins over the
/// environment, which wins over the file, which wins over the default.
/// </summary>
public static class ConfigKeys
{
    public static readonly ConfigKey Mount = new("mount", ConfigKind.Path, null, "Mount point (the mount command's argument takes precedence).");
    public static readonly ConfigKey DataDir = new("data_dir", ConfigKind.Path, null, "Folder of the embedded metadata database and local content store (default: $XDG_DATA_HOME/truckeefs, else ~/.local/share/truckeefs).");
    public static readonly ConfigKey CacheDir = new("cache_dir", ConfigKind.Path, null, "Folder of cached blocks and staged changes (default: <data_dir>/cache).");
    public static readonly ConfigKey BlockSize = new("block_size", ConfigKind.Size, "4m", "Size of the immutable blocks file contents are stored in (64k to 64m).");
    public static readonly ConfigKey AttrTimeout = new("attr_timeout", ConfigKind.Seconds, null,
        "How long the kernel may cache file attributes, in seconds (default: 60, other mounts' changes invalidate them through redis_host; 1 with sql_host but no redis_host).");
    public static readonly ConfigKey EntryTimeout = new("entry_timeout", ConfigKind.Seconds, null,
        "How long the kernel may cache names, in seconds (default: 60, other mounts' changes invalidate them through redis_host; 1 with sql_host but no redis_host).");
    public static readonly ConfigKey CacheMaintenance = new("cache_maintenance", ConfigKind.Boolean, "true",
        "Run the cache pruner, which evicts cached blocks by cache_ttl, cache_size and cache_min_free (never staged changes or blocks of open files).");
    public static readonly ConfigKey CacheTtl = new("cache_ttl", ConfigKind.Seconds, "14400",
        "Cached blocks not read for this many seconds are evicted; 0: never by age.") { Minimum = 0 };
    public static readonly ConfigKey CacheSize = new("cache_size", ConfigKind.Size, "0",
        "Budget of cached blocks in bytes (k/m/g/t suffixes); the least recently read are evicted beyond it. 0: unlimited.");
    public static readonly ConfigKey CacheMinFree = new("cache_min_free", ConfigKind.Size, "1g",
        "Free space the pruner keeps on cache_dir's filesystem, evicting the least recently read blocks when it falls below. 0: no minimum.");
    public static readonly ConfigKey Sleep = new("sleep", ConfigKind.Seconds, "60",
        "Seconds between cache pruner cycles (a download that takes the cache over cache_size or under cache_min_free starts one at once).") { Minimum = 0.1 };
    public static readonly ConfigKey Nice = new("nice", ConfigKind.Integer, "10",
        "Niceness (0 to 19) of the cache pruner's thread, so that its scans yield to the filesystem's own work.") { Minimum = 0 };
    public static readonly ConfigKey SessionHeartbeat = new("session_heartbeat", ConfigKind.Seconds, "5",
        "How often a mount records that it is alive, and looks for mounts that stopped doing so, in seconds.") { Minimum = 0.1 };
    public static readonly ConfigKey SessionTimeout = new("session_timeout", ConfigKind.Seconds, "30",
        "How long a mount may miss heartbeats before the others declare it dead and release its locks and open files, in seconds (at least twice session_heartbeat).") { Minimum = 0.2 };
    public static readonly ConfigKey MountOptions = new("mount_options", ConfigKind.Text, "fsname=TruckeeFS,default_permissions",
        "FUSE mount options, comma separated (allow_other is added when running as root).");
    public static readonly ConfigKey LogFile = new("log_file", ConfigKind.Path, null, "Write the log to this file instead of standard error.");

    public static readonly ConfigKey SqlHost = new("sql_host", ConfigKind.Address, null,
        "MySQL or MariaDB server holding the metadata (host or host:port); unset: the embedded SQLite database in data_dir.");
    public static readonly ConfigKey SqlPort = new("sql_port", ConfigKind.Port, "3306", "Port of sql_host when it names none.");
    public static readonly ConfigKey SqlDb = new("sql_db", ConfigKind.Text, "truckeefs", "Database on sql_host (created on first use when the user may).");
    public static readonly ConfigKey SqlUser = new("sql_user", ConfigKind.Text, "truckeefs", "User that logs in to sql_host.");
    public static readonly ConfigKey SqlPass = new("sql_pass", ConfigKind.Text, null, "Password of sql_user.", IsSecret: true);
    public static readonly ConfigKey SqlSsl = new("sql_ssl", ConfigKind.Boolean, "false", "Require TLS to sql_host.");
    public static readonly ConfigKey RedisHost = new("redis_host", ConfigKind.Address, null,
        "Redis server the hosts mounting this filesystem coordinate through (host or host:port); unset: in-process coordination (one host).");
    public static readonly ConfigKey RedisPort = new("redis_port", ConfigKind.Port, "6379", "Port of redis_host when it names none.");
    public static readonly ConfigKey RedisDb = new("redis_db", ConfigKind.Integer, "0", "Redis database number.") { Minimum = 0 };
    public static readonly ConfigKey RedisSemaphoreTimeout = new("redis_semaphore_timeout", ConfigKind.Seconds, "1800",
        "Lifetime of a semaphore whose holder stops renewing it (a crashed host), in seconds.") { Minimum = 1 };
    public static readonly ConfigKey CommitWaitTimeout = new("commit_wait_timeout", ConfigKind.Seconds, "60",
        "How long opening a file waits for another mount's pending commit of it (closed there, still uploading) before serving the last committed contents, in seconds.") { Minimum = 0 };
    public static readonly ConfigKey ResetRedis = new("reset_redis", ConfigKind.Boolean, "false",
        "Delete this filesystem's Redis keys (and no others) when mounting; only when no other host has it mounted.");
    public static readonly ConfigKey TahoeUrl = new("tahoe_url", ConfigKind.Url, "http://127.0.0.1:3456",
        "Tahoe-LAFS web-API gateway for file contents. Giving it (or rootcap) selects Tahoe; otherwise contents stay in data_dir.");
    public static readonly ConfigKey RootCap = new("rootcap", ConfigKind.Text, null,
        "Writable Tahoe directory cap (URI:DIR2:...) this filesystem lives under; `truckeefs init` makes one. Grants access to everything: keep it secret.",
        IsSecret: true);
    public static readonly ConfigKey NetTimeout = new("net_timeout", ConfigKind.Seconds, "30",
        "How long one request to Tahoe, MySQL or Redis may take, in seconds; transient failures are retried for a few of these.") { Minimum = 0.1 };
    public static readonly ConfigKey MaxConnections = new("max_connections", ConfigKind.Integer, "10", "Requests in flight to the Tahoe gateway at once.") { Minimum = 1 };
    public static readonly ConfigKey AuthToken = new("auth_token", ConfigKind.Text, null,
        "Bearer token sent to the Tahoe gateway (for a gateway behind an authenticating proxy).", IsSecret: true);
    public static readonly ConfigKey BackendStorageStrategy = new("backend_storage_strategy", ConfigKind.Choice, "FLAT",
        "FLAT: Tahoe holds file contents only. MIRROR: the directory tree is also kept as Tahoe directories under rootcap, browsable with Tahoe's own tools.")
    {
        Choices = ["FLAT", "MIRROR"],
    };

    public static readonly ConfigKey TestCompatibility = new("test_compatibility", ConfigKind.Boolean, "true",
        "Before mounting, check that this host can run a FUSE filesystem (Linux, /dev/fuse, fusermount3, libfuse 3).");
    public static readonly ConfigKey TestIntegration = new("test_integration", ConfigKind.Boolean, "true",
        "Before mounting, write, read back and delete a test record in the metadata database, the content store and the coordinator.");
    public static readonly ConfigKey TestFunctionality = new("test_functionality", ConfigKind.Boolean, "false",
        "Once mounted, create, write, read, move, copy, list and delete files in a scratch directory of the mount, then remove it.");

    public static IReadOnlyList<ConfigKey> All { get; } =
    [
        Mount, DataDir, CacheDir, BlockSize, AttrTimeout, EntryTimeout, MountOptions, LogFile, SessionHeartbeat, SessionTimeout,
        CacheMaintenance, CacheTtl, CacheSize, CacheMinFree, Sleep, Nice,
        SqlHost, SqlPort, SqlDb, SqlUser, SqlPass, SqlSsl,
        RedisHost, RedisPort, RedisDb, RedisSemaphoreTimeout, CommitWaitTimeout, ResetRedis,
        TahoeUrl, RootCap, NetTimeout, MaxConnections, AuthToken, BackendStorageStrategy,
        TestCompatibility, TestIntegration, TestFunctionality,
    ];

    public static ConfigKey? Find(string name) => All.FirstOrDefault(k => k.Name == name);
}
