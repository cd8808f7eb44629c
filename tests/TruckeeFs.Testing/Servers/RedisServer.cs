using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// A real <c>redis-server</c> on 127.0.0.1 for tests, without persistence: data does not survive
/// <see cref="LoopbackServer.Stop"/>, as with a Redis configured without snapshots.
/// <see cref="Shared"/> serves the whole test run (isolate tests by key prefix).
/// </summary>
public sealed class RedisServer : LoopbackServer
{
    private static readonly Lazy<RedisServer> SharedServer = new(() => Create(port: 0, isShared: true));
    private readonly string _binary;

    private RedisServer(bool isShared)
        : base("redis", isShared)
    {
        _binary = ServerBinaries.Find("redis-server", "redis-server");
    }

    /// <summary>The server every test of this run shares; started on first use.</summary>
    public static RedisServer Shared => SharedServer.Value;

    /// <summary>"127.0.0.1:port", as a Redis client expects it.</summary>
    public string EndPoint => string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port}");

    /// <summary>Starts a dedicated server on a free port; the caller disposes it.</summary>
    public static RedisServer StartNew() => Create(port: 0, isShared: false);

    /// <summary>Starts a dedicated server on <paramref name="port"/>; the caller disposes it.</summary>
    public static RedisServer StartNew(int port) => Create(port, isShared: false);

    private static RedisServer Create(int port, bool isShared)
    {
        var server = new RedisServer(isShared);
        server.Launch(port);
        return server;
    }

    private protected override ServerProcess CreateProcess(int port) => new(_binary,
    [
        "--port", port.ToString(CultureInfo.InvariantCulture),
        "--bind", Host,
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", WorkingDirectory,
        "--pidfile", Path.Combine(WorkingDirectory, ServerDirectories.PidFileName),
    ], WorkingDirectory, port);

    private protected override bool IsReady()
    {
        using var client = new TcpClient();
        client.Connect(Host, Port);
        var stream = client.GetStream();
        stream.ReadTimeout = 1000;
        stream.Write("PING\r\n"u8);
        var reply = new byte[7];
        var read = 0;
        while (read < reply.Length)
        {
            var n = stream.Read(reply, read, reply.Length - read);
            if (n == 0) break;
            read += n;
        }
        return Encoding.ASCII.GetString(reply, 0, read) == "+PONG\r\n";
    }
}
