using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace TruckeeFs.Config;

/// <summary>A configuration value that cannot be used; the message names the key, value and source.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// The merged configuration: defaults, then the YAML file, then the environment, then the
/// command line. Every value remembers where it came from, so an error can say.
/// </summary>
public sealed class Configuration
{
    private readonly Dictionary<string, (string Value, string Source)> _values = [];

    private Configuration()
    {
    }

    /// <param name="yamlPath">The -c file, or null.</param>
    /// <param name="flags">Values given on the command line, by canonical key name.</param>
    /// <param name="environment">The process environment.</param>
    public static Configuration Load(string? yamlPath, IReadOnlyDictionary<string, string> flags, IDictionary environment)
    {
        var configuration = new Configuration();
        foreach (var key in ConfigKeys.All)
        {
            if (key.Default is not null) configuration._values[key.Name] = (key.Default, "default");
        }
        if (yamlPath is not null) configuration.ReadYaml(yamlPath);
        foreach (var key in ConfigKeys.All)
        {
            foreach (var variable in new[] { key.Name, key.EnvironmentVariable })
            {
                if (environment[variable] is string value) configuration.Set(key, value, $"environment variable {variable}");
            }
        }
        foreach (var (name, value) in flags)
        {
            var key = ConfigKeys.Find(name) ?? throw new ConfigException($"unknown key '{name}'");
            configuration.Set(key, value, $"command-line flag {key.Flag}");
        }
        foreach (var key in ConfigKeys.All) configuration.Validate(key);
        return configuration;
    }

    public string? GetText(ConfigKey key) => _values.TryGetValue(key.Name, out var v) ? v.Value : null;

    /// <summary>
    /// Whether the key was given in the file, the environment or on the command line, rather
    /// than left at its default (a documented default such as tahoe_url's does not select anything).
    /// </summary>
    public bool IsGiven(ConfigKey key) => _values.TryGetValue(key.Name, out var v) && v.Source != DefaultSource;

    public long GetInteger(ConfigKey key) =>
        long.TryParse(Required(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : throw Invalid(key, Expected(key));

    /// <summary>The canonical spelling of a <see cref="ConfigKind.Choice"/> key's value.</summary>
    public string GetChoice(ConfigKey key) =>
        key.Choices.FirstOrDefault(c => string.Equals(c, Required(key).Trim(), StringComparison.OrdinalIgnoreCase)) ?? throw Invalid(key, Expected(key));

    /// <summary>The server an <see cref="ConfigKind.Address"/> key names, its port defaulting to <paramref name="portKey"/>'s.</summary>
    public HostAndPort GetAddress(ConfigKey key, ConfigKey portKey)
    {
        try
        {
            return HostAndPort.Parse(Required(key), (int)GetInteger(portKey));
        }
        catch (ArgumentException e)
        {
            throw new ConfigException($"{key.Name}: '{Display(key)}' from {SourceOf(key)} is not host or host:port: {e.Message}");
        }
    }

    public Uri GetUrl(ConfigKey key) => ParseUrl(Required(key), out var url) ? url : throw Invalid(key, Expected(key));

    /// <summary>An error about <paramref name="key"/>'s value that names the value (masked if secret) and where it came from.</summary>
    public ConfigException Problem(ConfigKey key, string problem) => new($"{key.Name}: '{Display(key)}' from {SourceOf(key)} {problem}");

    public string? GetPath(ConfigKey key) => GetText(key) is { } path ? ExpandHome(path) : null;

    public long GetSize(ConfigKey key) => ParseSize(Required(key), out var size) ? size : throw Invalid(key, "a size such as 4096, 64k, 4m or 1g");

    public bool GetBoolean(ConfigKey key) => ParseBoolean(Required(key), out var value) ? value : throw Invalid(key, "true/false/yes/no/1/0");

    public double GetSeconds(ConfigKey key) => ParseSeconds(Required(key), out var value) ? value : throw Invalid(key, "a number of seconds");

    /// <summary>Where the key's value came from ("default", "environment variable X", ...).</summary>
    public string SourceOf(ConfigKey key) => _values.TryGetValue(key.Name, out var v) ? v.Source : "unset";

    /// <summary>The value for logs: secrets are masked.</summary>
    public string Display(ConfigKey key) => GetText(key) is not { } value ? "(unset)" : key.IsSecret ? "********" : value;

    public static bool ParseSize(string text, out long size)
    {
        size = 0;
        text = text.Trim();
        if (text.Length == 0) return false;
        var multiplier = char.ToLowerInvariant(text[^1]) switch
        {
            'k' => 1L << 10,
            'm' => 1L << 20,
            'g' => 1L << 30,
            't' => 1L << 40,
            _ => 1L,
        };
        var digits = multiplier == 1 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var number)) return false;
        if (number > long.MaxValue / multiplier) return false;
        size = number * multiplier;
        return true;
    }

    public static bool ParseBoolean(string text, out bool value)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "true" or "yes" or "1" or "on":
                value = true;
                return true;
            case "false" or "no" or "0" or "off":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    public static bool ParseSeconds(string text, out double value) =>
        double.TryParse(text.Trim().TrimEnd('s'), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value >= 0 && double.IsFinite(value);

    /// <summary>An absolute http or https URL without credentials (they would show up in logs; use auth_token).</summary>
    public static bool ParseUrl(string text, [NotNullWhen(true)] out Uri? url) =>
        Uri.TryCreate(text.Trim(), UriKind.Absolute, out url) && url.Scheme is "http" or "https" && url.UserInfo.Length == 0
        && url.Query.Length == 0 && url.Fragment.Length == 0;

    private const string DefaultSource = "default";

    /// <summary>An empty value from the environment or command line puts the key back to its default.</summary>
    private void Set(ConfigKey key, string value, string source)
    {
        if (value.Trim().Length > 0) _values[key.Name] = (value, source);
        else if (key.Default is not null) _values[key.Name] = (key.Default, DefaultSource);
        else _values.Remove(key.Name);
    }

    private void Validate(ConfigKey key)
    {
        if (GetText(key) is not { } value) return;
        var valid = key.Kind switch
        {
            ConfigKind.Integer => long.TryParse(value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= key.Minimum,
            ConfigKind.Port => long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && HostAndPort.IsValidPort(port),
            ConfigKind.Size => ParseSize(value, out _),
            ConfigKind.Boolean => ParseBoolean(value, out _),
            ConfigKind.Seconds => ParseSeconds(value, out var seconds) && seconds >= key.Minimum,
            ConfigKind.Url => ParseUrl(value, out _),
            ConfigKind.Choice => key.Choices.Any(c => string.Equals(c, value.Trim(), StringComparison.OrdinalIgnoreCase)),
            ConfigKind.Address => AddressProblem(value) is null,
            _ => true,
        };
        if (!valid)
        {
            if (key.Kind == ConfigKind.Address) throw new ConfigException($"{key.Name}: '{Display(key)}' from {SourceOf(key)} is not host or host:port: {AddressProblem(value)}");
            throw Invalid(key, Expected(key));
        }
    }

    private static string? AddressProblem(string value)
    {
        try
        {
            HostAndPort.Parse(value, 1);
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    private static string Expected(ConfigKey key) => key.Kind switch
    {
        ConfigKind.Integer => key.Minimum > long.MinValue ? string.Create(CultureInfo.InvariantCulture, $"an integer of at least {key.Minimum}") : "an integer",
        ConfigKind.Port => "a port from 1 to 65535",
        ConfigKind.Size => "a size such as 4096, 64k, 4m or 1g",
        ConfigKind.Boolean => "true/false/yes/no/1/0",
        ConfigKind.Seconds => key.Minimum > 0 ? string.Create(CultureInfo.InvariantCulture, $"a number of seconds of at least {key.Minimum}") : "a number of seconds",
        ConfigKind.Url => "an http:// or https:// URL without user name, password, query or fragment",
        ConfigKind.Choice => "one of " + string.Join(", ", key.Choices),
        _ => "usable",
    };

    private string Required(ConfigKey key) =>
        GetText(key) ?? throw new ConfigException($"{key.Name}: a value is required (set it with {key.Flag}, {key.EnvironmentVariable} or in the YAML file)");

    private ConfigException Invalid(ConfigKey key, string expected) =>
        new($"{key.Name}: '{Display(key)}' from {SourceOf(key)} is not {expected}");

    private void ReadYaml(string path)
    {
        var stream = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            stream.Load(reader);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read configuration file {path}: {e.Message}");
        }
        catch (YamlException e)
        {
            throw new ConfigException($"{path} line {e.Start.Line}: YAML syntax error: {e.InnerException?.Message ?? e.Message}");
        }
        if (stream.Documents.Count == 0) return;
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new ConfigException($"{path}: expected a mapping of keys to values at the top level");
        foreach (var (keyNode, valueNode) in root.Children)
        {
            var name = ((YamlScalarNode)keyNode).Value ?? "";
            var line = keyNode.Start.Line;
            var key = ConfigKeys.Find(name) ?? throw new ConfigException($"{path} line {line}: unknown key '{name}'");
            if (valueNode is not YamlScalarNode scalar)
                throw new ConfigException($"{path} line {line}: {key.Name} needs a single value");
            if (scalar.Value is { Length: > 0 } value && value != "~" && value != "null")
                _values[key.Name] = (value, $"{path} line {line}");
        }
    }

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.TrimStart('~').TrimStart('/'))
            : path;
}
