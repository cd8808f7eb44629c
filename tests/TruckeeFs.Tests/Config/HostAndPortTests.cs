using TruckeeFs.Config;

namespace TruckeeFs.Tests.Config;

public sealed class HostAndPortTests
{
    [Theory]
    [InlineData("db.example", 3306, "db.example", 3306)]
    [InlineData("db.example:3307", 3306, "db.example", 3307)]
    [InlineData(" 127.0.0.1:7000 ", 6379, "127.0.0.1", 7000)]
    [InlineData("::1", 6379, "::1", 6379)]
    [InlineData("fe80::1:2", 6379, "fe80::1:2", 6379)]
    [InlineData("[::1]", 6381, "::1", 6381)]
    [InlineData("[::1]:7001", 6379, "::1", 7001)]
    [InlineData("h:65535", 1, "h", 65535)]
    public void A_port_written_with_the_host_wins_over_the_default(string text, int defaultPort, string host, int port) =>
        Assert.Equal(new HostAndPort(host, port), HostAndPort.Parse(text, defaultPort));

    [Theory]
    [InlineData("", 6379)]
    [InlineData("   ", 6379)]
    [InlineData("host:", 6379)]
    [InlineData(":6379", 6379)]
    [InlineData("host:port", 6379)]
    [InlineData("host:-1", 6379)]
    [InlineData("host:0", 6379)]
    [InlineData("host:70000", 6379)]
    [InlineData("host", 0)]
    [InlineData("host", 65536)]
    [InlineData("[::1", 6379)]
    [InlineData("[]:80", 6379)]
    [InlineData("[::1]x", 6379)]
    [InlineData("[::1]:x", 6379)]
    public void Unusable_addresses_are_refused(string text, int defaultPort) =>
        Assert.Throws<ArgumentException>(() => HostAndPort.Parse(text, defaultPort));

    [Theory]
    [InlineData("db", 3306, "db:3306")]
    [InlineData("::1", 3306, "[::1]:3306")]
    public void Prints_as_users_write_it(string host, int port, string expected) =>
        Assert.Equal(expected, new HostAndPort(host, port).ToString());
}
