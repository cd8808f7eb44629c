using TruckeeFs.Coordination;

namespace TruckeeFs.Tests.Coordination;

public sealed class RedisOptionsTests
{
    [Theory]
    [InlineData("redis.example", 6380, "redis.example", 6380)]
    [InlineData("redis.example:6390", 6380, "redis.example", 6390)]
    [InlineData(" 127.0.0.1:7000 ", 6379, "127.0.0.1", 7000)]
    [InlineData("::1", 6379, "::1", 6379)]
    [InlineData("[::1]", 6381, "::1", 6381)]
    [InlineData("[::1]:7001", 6379, "::1", 7001)]
    public void HostMayCarryThePort(string host, int port, string expectedHost, int expectedPort)
    {
        var options = new RedisOptions { Host = host, Port = port };
        Assert.Equal((expectedHost, expectedPort), options.ResolveEndPoint());
    }

    [Theory]
    [InlineData("", 6379)]
    [InlineData("host:", 6379)]
    [InlineData("host:port", 6379)]
    [InlineData("host:70000", 6379)]
    [InlineData("host", 0)]
    [InlineData("[::1", 6379)]
    [InlineData("[::1]x", 6379)]
    public void BadEndPointsAreRefused(string host, int port)
    {
        var options = new RedisOptions { Host = host, Port = port };
        Assert.Throws<ArgumentException>(() => options.ResolveEndPoint());
    }

    [Fact]
    public void DefaultsMatchTheOriginal()
    {
        var options = new RedisOptions();
        Assert.Equal(6379, options.Port);
        Assert.Equal(0, options.Database);
        Assert.Equal(TimeSpan.FromSeconds(1800), options.SemaphoreTimeout);
    }
}
