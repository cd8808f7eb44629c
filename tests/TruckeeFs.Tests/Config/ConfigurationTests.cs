using System.Collections;
using TruckeeFs.Config;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.Config;

/// <summary>The production keys of the configuration: names, defaults, layering, validation and backend selection.</summary>
public sealed class ConfigurationTests : IDisposable
{
    private static readonly Dictionary<string, string> NoFlags = [];
    private readonly TempDirectory _directory = TempDirectory.Create("config");

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData("sql_host", null)]
    [InlineData("sql_port", "3306")]
    [InlineData("sql_db", "truckeefs")]
    [InlineData("sql_user", "truckeefs")]
    [InlineData("sql_pass", null)]
    [InlineData("sql_ssl", "false")]
    [InlineData("redis_host", null)]
    [InlineData("redis_port", "6379")]
    [InlineData("redis_db", "0")]
    [InlineData("redis_semaphore_timeout", "1800")]
    [InlineData("reset_redis", "false")]
    [InlineData("tahoe_url", "http://127.0.0.1:3456")]
    [InlineData("rootcap", null)]
    [InlineData("net_timeout", "30")]
    [InlineData("max_connections", "10")]
    [InlineData("auth_token", null)]
    [InlineData("backend_storage_strategy", "FLAT")]
    public void Every_production_key_has_its_default_a_flag_and_two_environment_names(string name, string? expectedDefault)
    {
        var key = ConfigKeys.Find(name);
        Assert.NotNull(key);
        Assert.Equal(expectedDefault, key.Default);
        Assert.Equal("--" + name.Replace('_', '-'), key.Flag);
        Assert.Equal("TRUCKEEFS_" + name.ToUpperInvariant(), key.EnvironmentVariable);
        Assert.Equal(expectedDefault, Load().GetText(key));
        Assert.False(Load().IsGiven(key));
    }

    [Fact]
    public void Passwords_tokens_and_the_rootcap_are_secret()
    {
        Assert.Equal(["sql_pass", "rootcap", "auth_token"], ConfigKeys.All.Where(k => k.IsSecret).Select(k => k.Name));
        var configuration = Load(environment: new() { ["TRUCKEEFS_SQL_PASS"] = "hunter2", ["rootcap"] = "URI:DIR2:abc:def" });
        Assert.Equal("********", configuration.Display(ConfigKeys.SqlPass));
        Assert.Equal("********", configuration.Display(ConfigKeys.RootCap));
    }

    [Fact]
    public void Flags_win_over_the_environment_which_wins_over_the_file()
    {
        var yaml = Yaml("sql_host: db.file", "redis_host: redis.file", "net_timeout: 5", "backend_storage_strategy: mirror");
        var configuration = Load(yaml,
            environment: new() { ["redis_host"] = "redis.env", ["TRUCKEEFS_NET_TIMEOUT"] = "7" },
            flags: new() { ["net_timeout"] = "9" });
        Assert.Equal("db.file", configuration.GetText(ConfigKeys.SqlHost));
        Assert.Equal($"{yaml} line 1", configuration.SourceOf(ConfigKeys.SqlHost));
        Assert.Equal("redis.env", configuration.GetText(ConfigKeys.RedisHost));
        Assert.Equal("environment variable redis_host", configuration.SourceOf(ConfigKeys.RedisHost));
        Assert.Equal(9, configuration.GetSeconds(ConfigKeys.NetTimeout));
        Assert.Equal("MIRROR", configuration.GetChoice(ConfigKeys.BackendStorageStrategy));
    }

    [Fact]
    public void An_empty_value_from_the_environment_or_a_flag_restores_the_default()
    {
        var yaml = Yaml("sql_host: db.file", "sql_port: 3307");
        var configuration = Load(yaml, environment: new() { ["sql_host"] = "" }, flags: new() { ["sql_port"] = " " });
        Assert.Null(configuration.GetText(ConfigKeys.SqlHost));
        Assert.False(configuration.IsGiven(ConfigKeys.SqlHost));
        Assert.Equal(3306, configuration.GetInteger(ConfigKeys.SqlPort));
    }

    [Theory]
    [InlineData("backend_storage_strategy", "SHARDED", "is not one of FLAT, MIRROR")]
    [InlineData("sql_port", "0", "is not a port from 1 to 65535")]
    [InlineData("redis_port", "65536", "is not a port from 1 to 65535")]
    [InlineData("sql_host", "db:99999", "is not host or host:port")]
    [InlineData("redis_host", "[::1", "is not host or host:port")]
    [InlineData("redis_db", "-1", "is not an integer of at least 0")]
    [InlineData("max_connections", "0", "is not an integer of at least 1")]
    [InlineData("net_timeout", "0", "is not a number of seconds of at least 0.1")]
    [InlineData("sql_ssl", "maybe", "is not true/false")]
    [InlineData("tahoe_url", "ftp://gateway", "is not an http:// or https:// URL")]
    [InlineData("tahoe_url", "http://user:pw@gateway:3456", "is not an http:// or https:// URL")]
    public void A_bad_value_is_reported_with_its_key_value_and_source(string name, string value, string problem)
    {
        var fromFlag = Assert.Throws<ConfigException>(() => Load(flags: new() { [name] = value }));
        Assert.StartsWith($"{name}: '{value}' from command-line flag --{name.Replace('_', '-')} {problem}", fromFlag.Message, StringComparison.Ordinal);

        var fromEnvironment = Assert.Throws<ConfigException>(() => Load(environment: new() { ["TRUCKEEFS_" + name.ToUpperInvariant()] = value }));
        Assert.StartsWith($"{name}: '{value}' from environment variable TRUCKEEFS_{name.ToUpperInvariant()} {problem}", fromEnvironment.Message, StringComparison.Ordinal);

        var yaml = Yaml("block_size: 64k", $"{name}: \"{value}\"");
        var fromFile = Assert.Throws<ConfigException>(() => Load(yaml));
        Assert.StartsWith($"{name}: '{value}' from {yaml} line 2 {problem}", fromFile.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Addresses_are_read_with_the_one_parser_and_their_port_keys()
    {
        var configuration = Load(flags: new() { ["sql_host"] = "db.example", ["sql_port"] = "3307", ["redis_host"] = "[::1]:6380" });
        Assert.Equal(new HostAndPort("db.example", 3307), configuration.GetAddress(ConfigKeys.SqlHost, ConfigKeys.SqlPort));
        Assert.Equal(new HostAndPort("::1", 6380), configuration.GetAddress(ConfigKeys.RedisHost, ConfigKeys.RedisPort));
    }

    [Fact]
    public void Tahoe_is_selected_only_by_a_given_url_or_rootcap_not_by_the_documented_default()
    {
        Assert.False(Backends.SelectsTahoe(Load()));
        Assert.Null(Backends.ReadTahoeOptions(Load(), requireRootCap: true));
        Assert.True(Backends.SelectsTahoe(Load(flags: new() { ["tahoe_url"] = "http://127.0.0.1:3456" })));
        var byRootCap = Backends.ReadTahoeOptions(Load(environment: new() { ["TRUCKEEFS_ROOTCAP"] = "URI:DIR2:aaaa:bbbb" }), requireRootCap: true);
        Assert.NotNull(byRootCap);
        Assert.Equal(new Uri("http://127.0.0.1:3456"), byRootCap.TahoeUrl);
        Assert.Equal("URI:DIR2:aaaa:bbbb", byRootCap.RootCap);
        Assert.Equal(TimeSpan.FromSeconds(30), byRootCap.NetTimeout);
        Assert.Equal(10, byRootCap.MaxConnections);
    }

    [Fact]
    public void Tahoe_without_a_rootcap_asks_for_truckeefs_init()
    {
        var configuration = Load(flags: new() { ["tahoe_url"] = "http://127.0.0.1:3456" });
        var error = Assert.Throws<ConfigException>(() => Backends.ReadTahoeOptions(configuration, requireRootCap: true));
        Assert.Contains("truckeefs init", error.Message, StringComparison.Ordinal);
        Assert.Contains("rootcap", error.Message, StringComparison.Ordinal);
        Assert.NotNull(Backends.ReadTahoeOptions(configuration, requireRootCap: false));
    }

    [Theory]
    [InlineData("URI:DIR2-RO:aaaa:bbbb", "read-only")]
    [InlineData("URI:CHK:aaaa:bbbb:3:10:100", "is not a writable Tahoe directory cap")]
    public void A_rootcap_that_cannot_be_written_is_refused_without_showing_it(string cap, string problem)
    {
        var error = Assert.Throws<ConfigException>(() => Backends.ReadTahoeOptions(Load(flags: new() { ["rootcap"] = cap }), requireRootCap: true));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(cap, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("rootcap: '********' from command-line flag --rootcap", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mirror_needs_tahoe()
    {
        var error = Assert.Throws<ConfigException>(() => Backends.IsMirrored(Load(flags: new() { ["backend_storage_strategy"] = "MIRROR" }), null));
        Assert.StartsWith("backend_storage_strategy: 'MIRROR' from command-line flag --backend-storage-strategy needs Tahoe-LAFS", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Redis_settings_carry_the_database_timeouts_and_semaphore_ttl()
    {
        Assert.Null(Backends.ReadRedisOptions(Load()));
        var redis = Backends.ReadRedisOptions(Load(flags: new() { ["redis_host"] = "127.0.0.1", ["redis_port"] = "6390", ["redis_db"] = "3", ["redis_semaphore_timeout"] = "60", ["net_timeout"] = "20" }));
        Assert.NotNull(redis);
        Assert.Equal(("127.0.0.1", 6390), redis.ResolveEndPoint());
        Assert.Equal(3, redis.Database);
        Assert.Equal(TimeSpan.FromSeconds(60), redis.SemaphoreTimeout);
        Assert.Equal(TimeSpan.FromSeconds(20), redis.OperationTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), redis.ConnectTimeout);
        Assert.Equal("truckeefs:abc:", Backends.RedisKeyPrefix("abc"));
    }

    [Theory]
    [InlineData("--backend-storage-strategy", "STRIPED", "backend_storage_strategy: 'STRIPED' from command-line flag --backend-storage-strategy is not one of FLAT, MIRROR")]
    [InlineData("--redis-port", "http", "redis_port: 'http' from command-line flag --redis-port is not a port from 1 to 65535")]
    [InlineData("--sql-host", "db:", "sql_host: 'db:' from command-line flag --sql-host is not host or host:port")]
    public async Task The_executable_exits_2_naming_key_value_and_source(string flag, string value, string message)
    {
        var mountPoint = Directory.CreateDirectory(Path.Combine(_directory.Path, "mnt" + Guid.NewGuid().ToString("N"))).FullName;
        foreach (var command in new[] { "mount", "init" })
        {
            string[] arguments = command == "mount" ? ["mount", mountPoint, flag, value] : ["init", flag, value];
            var (status, _, error) = await TruckeeFsCli.RunAsync(null, arguments);
            Assert.Equal(2, status);
            Assert.Contains("truckeefs: " + message, error, StringComparison.Ordinal);
            // One line, no stack trace.
            Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
    }

    [Fact]
    public async Task Mounting_tahoe_without_a_rootcap_exits_2_and_says_to_run_init()
    {
        var mountPoint = Directory.CreateDirectory(Path.Combine(_directory.Path, "mnt")).FullName;
        var (status, _, error) = await TruckeeFsCli.RunAsync(new Dictionary<string, string> { ["TRUCKEEFS_TAHOE_URL"] = "http://127.0.0.1:3456" }, "mount", mountPoint);
        Assert.Equal(2, status);
        Assert.Contains("truckeefs init", error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(mountPoint));
    }

    private string Yaml(params string[] lines)
    {
        var path = Path.Combine(_directory.Path, $"config-{Guid.NewGuid():N}.yaml");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static Configuration Load(string? yaml = null, Dictionary<string, string>? environment = null, Dictionary<string, string>? flags = null) =>
        Configuration.Load(yaml, flags ?? NoFlags, new Hashtable(environment ?? []));
}
