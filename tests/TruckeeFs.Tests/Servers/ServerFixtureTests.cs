using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MySql.Data.MySqlClient;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Servers;

/// <summary>The server fixtures start real servers that do what the other tests rely on.</summary>
public sealed class ServerFixtureTests
{
    [Fact]
    public void MariaDbStoresNamesByteForByte()
    {
        var server = MariaDbServer.Shared;
        using var connection = new MySqlConnection(server.CreateDatabase(UniqueName("names")));
        connection.Open();
        Execute(connection, "CREATE TABLE names (id INT AUTO_INCREMENT PRIMARY KEY, name VARBINARY(255) NOT NULL, UNIQUE (name))");
        byte[][] names =
        [
            [0x66, 0xFF, 0xFE, 0x80, 0xC3, 0x28], // not UTF-8 at all
            Encoding.UTF8.GetBytes("file-\U0001F600.txt"), // a 4-byte UTF-8 sequence
            "A"u8.ToArray(),
            "a"u8.ToArray(), // differs from "A": the unique key compares bytes
        ];
        foreach (var name in names)
        {
            using var insert = new MySqlCommand("INSERT INTO names (name) VALUES (@name)", connection);
            insert.Parameters.Add("@name", MySqlDbType.VarBinary).Value = name;
            insert.ExecuteNonQuery();
        }

        using var select = new MySqlCommand("SELECT name FROM names ORDER BY id", connection);
        using var reader = select.ExecuteReader();
        var read = new List<byte[]>();
        while (reader.Read()) read.Add((byte[])reader[0]);
        Assert.Equal(names, read);
    }

    [Fact]
    public void MariaDbUserNeedsItsPassword()
    {
        var server = MariaDbServer.Shared;
        var wrong = new MySqlConnectionStringBuilder(server.ConnectionString) { Password = "not-" + server.Password, Pooling = false };
        using var connection = new MySqlConnection(wrong.ConnectionString);
        var error = Assert.Throws<MySqlException>(connection.Open);
        Assert.Contains("Access denied", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MariaDbKeepsDataAcrossStopAndStart()
    {
        using var server = MariaDbServer.StartNew();
        var port = server.Port;
        var connectionString = new MySqlConnectionStringBuilder(server.ConnectionString) { Pooling = false }.ConnectionString;
        using (var connection = new MySqlConnection(connectionString))
        {
            connection.Open();
            Execute(connection, "CREATE TABLE kept (v VARCHAR(20))");
            Execute(connection, "INSERT INTO kept VALUES ('survives')");
        }

        server.Stop();
        Assert.False(server.IsRunning);
        using (var connection = new MySqlConnection(connectionString))
            Assert.Throws<MySqlException>(connection.Open);

        server.Start();
        Assert.Equal(port, server.Port);
        using (var connection = new MySqlConnection(connectionString))
        {
            connection.Open();
            using var select = new MySqlCommand("SELECT v FROM kept", connection);
            Assert.Equal("survives", select.ExecuteScalar());
        }
    }

    [Fact]
    public void MariaDbListensOnLoopbackOnly() => AssertLoopbackOnly(MariaDbServer.Shared.Port);

    [Fact]
    public void RedisListensOnLoopbackOnly() => AssertLoopbackOnly(RedisServer.Shared.Port);

    [Fact]
    public void RedisRestartsOnTheSamePort()
    {
        using var server = RedisServer.StartNew();
        var port = server.Port;
        Assert.Equal("+PONG", Ping(server.Port));

        server.Stop();
        Assert.False(server.IsRunning);
        Assert.Throws<SocketException>(() => Ping(port));

        server.Start();
        Assert.Equal(port, server.Port);
        Assert.Equal("+PONG", Ping(port));
    }

    [Fact]
    public void AFrozenServerKeepsItsPortButAnswersNothing()
    {
        using var server = RedisServer.StartNew();
        server.Freeze();
        using (var client = new TcpClient())
        {
            // The kernel still accepts the connection; the server never reads it.
            client.Connect(IPAddress.Loopback, server.Port);
            var stream = client.GetStream();
            stream.ReadTimeout = 300;
            stream.Write("PING\r\n"u8);
            Assert.Throws<IOException>(() => stream.ReadByte());
        }

        server.Thaw();
        Assert.Equal("+PONG", Ping(server.Port));
    }

    [Fact]
    public void DisposeKillsTheServerAndDeletesItsFolder()
    {
        var server = RedisServer.StartNew();
        var pid = int.Parse(File.ReadAllText(Path.Combine(server.WorkingDirectory, "server.pid")).Trim(), CultureInfo.InvariantCulture);
        Assert.True(Directory.Exists($"/proc/{pid}"));

        server.Dispose();

        Assert.False(Directory.Exists(server.WorkingDirectory));
        // Reaped by its parent (this process), so the pid is gone, not a zombie.
        Assert.False(Directory.Exists($"/proc/{pid}"));
    }

    [Fact]
    public void StartFailureNamesTheBinaryThePortAndTheServerOutput()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        var error = Assert.Throws<ServerStartException>(() => RedisServer.StartNew(port));

        Assert.Contains("redis-server", error.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("Address already in use", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SharedServersRefuseToStop()
    {
        Assert.Throws<InvalidOperationException>(RedisServer.Shared.Stop);
        Assert.Throws<InvalidOperationException>(RedisServer.Shared.Freeze);
        Assert.Throws<InvalidOperationException>(MariaDbServer.Shared.Dispose);
        Assert.True(RedisServer.Shared.IsRunning);
        Assert.True(MariaDbServer.Shared.IsRunning);
    }

    private static string UniqueName(string stem) => $"{stem}_{Guid.NewGuid():N}";

    private static void Execute(MySqlConnection connection, string sql)
    {
        using var command = new MySqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }

    private static string Ping(int port)
    {
        using var client = new TcpClient();
        client.Connect(IPAddress.Loopback, port);
        using var stream = client.GetStream();
        stream.Write("PING\r\n"u8);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return reader.ReadLine() ?? "";
    }

    /// <summary>
    /// Reads the kernel's socket tables rather than probing other addresses, so the check never
    /// sends a packet anywhere but loopback.
    /// </summary>
    private static void AssertLoopbackOnly(int port)
    {
        var listeners = Listeners("/proc/net/tcp", port).Concat(Listeners("/proc/net/tcp6", port)).ToList();
        Assert.NotEmpty(listeners);
        Assert.All(listeners, address => Assert.True(IPAddress.IsLoopback(address), $"listening on {address}"));
    }

    private static IEnumerable<IPAddress> Listeners(string table, int port)
    {
        const string Listen = "0A";
        foreach (var line in File.ReadLines(table).Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var local = fields[1].Split(':');
            if (fields[3] != Listen || int.Parse(local[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture) != port) continue;
            // The kernel prints each 32-bit word of the address in host (little-endian) order.
            var bytes = new byte[local[0].Length / 2];
            for (var word = 0; word < bytes.Length / 4; word++)
            {
                var value = uint.Parse(local[0].AsSpan(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                BitConverter.TryWriteBytes(bytes.AsSpan(word * 4), value);
            }
            var address = new IPAddress(bytes);
            yield return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        }
    }
}
