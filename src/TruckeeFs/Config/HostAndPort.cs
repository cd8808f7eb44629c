using System.Globalization;

namespace TruckeeFs.Config;

/// <summary>
/// A server address as users write it: <c>host</c>, <c>host:port</c>, a bare IPv6 address, or
/// <c>[v6]</c> / <c>[v6]:port</c>. The one parser for every server key (<c>sql_host</c>,
/// <c>redis_host</c>), so they all accept the same forms.
/// </summary>
public readonly record struct HostAndPort(string Host, int Port)
{
    /// <summary>
    /// Reads <paramref name="text"/>; a port written there wins over <paramref name="defaultPort"/>.
    /// Throws <see cref="ArgumentException"/> for an empty host, a port that is not a number in
    /// 1..65535, or unbalanced brackets.
    /// </summary>
    public static HostAndPort Parse(string text, int defaultPort)
    {
        ArgumentNullException.ThrowIfNull(text);
        var host = text.Trim();
        if (host.Length == 0) throw new ArgumentException("the host is empty");
        if (host.StartsWith('['))
        {
            // Brackets are the only way to give a port with an IPv6 address.
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0) throw new ArgumentException($"'{text}' has no closing bracket");
            var address = host[1..close];
            if (address.Length == 0) throw new ArgumentException($"'{text}' has an empty address between its brackets");
            var rest = host[(close + 1)..];
            if (rest.Length == 0) return new HostAndPort(address, CheckPort(defaultPort));
            if (rest[0] != ':') throw new ArgumentException($"'{text}' has text after its closing bracket");
            return new HostAndPort(address, ParsePort(text, rest[1..]));
        }
        var colon = host.IndexOf(':', StringComparison.Ordinal);
        // More than one colon without brackets is a bare IPv6 address, which cannot carry a port.
        if (colon < 0 || host.IndexOf(':', colon + 1) >= 0) return new HostAndPort(host, CheckPort(defaultPort));
        if (colon == 0) throw new ArgumentException($"'{text}' has no host before its port");
        return new HostAndPort(host[..colon], ParsePort(text, host[(colon + 1)..]));
    }

    /// <summary>Whether <paramref name="port"/> can be a TCP port.</summary>
    public static bool IsValidPort(long port) => port is > 0 and <= 65535;

    /// <summary>"host:port", with brackets around an IPv6 address.</summary>
    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal)
            ? string.Create(CultureInfo.InvariantCulture, $"[{Host}]:{Port}")
            : string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port}");

    private static int ParsePort(string text, string port) =>
        int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? CheckPort(value)
            : throw new ArgumentException($"'{text}' has an invalid port '{port}'");

    private static int CheckPort(int port) =>
        IsValidPort(port) ? port : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"port {port} is not in 1..65535"));
}
