using System.Collections;
using System.Text.RegularExpressions;
using TruckeeFs.Config;

namespace TruckeeFs.Tests.Config;

/// <summary>The example configuration, the compose file and the README agree with the key registry.</summary>
public sealed partial class DocumentationTests
{
    private static readonly string Root = FindRoot();

    [Fact]
    public void The_example_configuration_loads_and_mentions_every_key()
    {
        var path = Path.Combine(Root, "config", "truckeefs.example.yaml");
        var configuration = Configuration.Load(path, new Dictionary<string, string>(), new Hashtable());
        var text = File.ReadAllText(path);
        foreach (var key in ConfigKeys.All)
            Assert.True(Regex.IsMatch(text, $"^(# )?{key.Name}:", RegexOptions.Multiline), $"{key.Name} is not in the example configuration");
        Assert.Equal(new HostAndPort("127.0.0.1", 3306), configuration.GetAddress(ConfigKeys.SqlHost, ConfigKeys.SqlPort));
        Assert.Equal(new HostAndPort("127.0.0.1", 6379), configuration.GetAddress(ConfigKeys.RedisHost, ConfigKeys.RedisPort));
        Assert.True(Backends.SelectsTahoe(configuration));
        // Without a rootcap yet: `truckeefs init` adds it.
        Assert.Throws<ConfigException>(() => Backends.ReadTahoeOptions(configuration, requireRootCap: true));
    }

    [Fact]
    public void The_example_configuration_matches_the_compose_file()
    {
        var compose = File.ReadAllText(Path.Combine(Root, "compose", "docker-compose.yml"));
        var configuration = Configuration.Load(Path.Combine(Root, "config", "truckeefs.example.yaml"), new Dictionary<string, string>(), new Hashtable());
        Assert.Contains($"MARIADB_DATABASE: {configuration.GetText(ConfigKeys.SqlDb)}", compose, StringComparison.Ordinal);
        Assert.Contains($"MARIADB_USER: {configuration.GetText(ConfigKeys.SqlUser)}", compose, StringComparison.Ordinal);
        Assert.Contains($"MARIADB_PASSWORD: {configuration.GetText(ConfigKeys.SqlPass)}", compose, StringComparison.Ordinal);
        Assert.Contains("\"127.0.0.1:3306:3306\"", compose, StringComparison.Ordinal);
        Assert.Contains("\"127.0.0.1:6379:6379\"", compose, StringComparison.Ordinal);
        Assert.Contains("\"127.0.0.1:3456:3456\"", compose, StringComparison.Ordinal);
        Assert.Equal(new Uri("http://127.0.0.1:3456"), configuration.GetUrl(ConfigKeys.TahoeUrl));
    }

    [Fact]
    public void The_readme_table_lists_every_key_with_its_flag_and_default()
    {
        var rows = TableRow().Matches(File.ReadAllText(Path.Combine(Root, "README.md")))
            .ToDictionary(m => m.Groups["key"].Value, m => (Flag: m.Groups["flag"].Value, Default: m.Groups["default"].Value.Trim()));
        foreach (var key in ConfigKeys.All)
        {
            Assert.True(rows.TryGetValue(key.Name, out var row), $"{key.Name} is not in the README's configuration table");
            Assert.StartsWith(key.Flag, row.Flag, StringComparison.Ordinal);
            if (key.Default is { } value) Assert.Equal($"`{value}`", row.Default);
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "TruckeeFs.sln"))) return directory.FullName;
        throw new InvalidOperationException("TruckeeFs.sln not found above the test assembly");
    }

    [GeneratedRegex(@"^\| `(?<key>[a-z_]+)` \| `(?<flag>--[a-z-]+)`[^|]* \| (?<default>[^|]*) \|", RegexOptions.Multiline)]
    private static partial Regex TableRow();
}
