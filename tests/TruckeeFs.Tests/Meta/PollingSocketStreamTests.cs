using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MySql.Data.MySqlClient;
using TruckeeFs.Meta;
using TruckeeFs.Testing.Servers;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// The socket stream MySQL connections read and write through: waits in poll(2) on the caller's
/// thread, bounded by the timeouts MySql.Data sets, and fails as NetworkStream fails.
/// </summary>
public sealed class PollingSocketStreamTests : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Socket _peer;
    private readonly NetworkStream _network;

    public PollingSocketStreamTests()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        // Connected asynchronously, as MySql.Data connects: .NET keeps the socket non-blocking.
        client.ConnectAsync(_listener.LocalEndPoint!).GetAwaiter().GetResult();
        _peer = _listener.Accept();
        _network = new NetworkStream(client, ownsSocket: true) { ReadTimeout = 300, WriteTimeout = 400 };
    }

    public void Dispose()
    {
        _network.Dispose();
        _peer.Dispose();
        _listener.Dispose();
    }

    [Fact]
    public async Task The_socket_leaves_dotnets_event_loop_and_keeps_working()
    {
        // A receive that has to wait puts the socket in .NET's epoll set, as MySql.Data's connect does.
        var pending = _network.Socket.ReceiveAsync(new byte[1], SocketFlags.None);
        _peer.Send([7]);
        Assert.Equal(1, await pending);
        var loop = PollingSocketStream.EventLoopOf(_network.Socket);
        Assert.NotNull(loop);
        Assert.True(InEpollSet(loop.Value, _network.Socket));

        using var stream = new PollingSocketStream(_network);

        // Its traffic no longer wakes .NET's event thread (and a thread-pool worker after it).
        Assert.False(InEpollSet(loop.Value, _network.Socket));
        _peer.Send("still"u8);
        var buffer = new byte[16];
        Assert.Equal("still"u8.ToArray(), buffer[..stream.Read(buffer)]);
        stream.Write("works"u8);
        Assert.Equal("works"u8.ToArray(), buffer[.._peer.Receive(buffer)]);
    }

    /// <summary>Whether the epoll instance <paramref name="epoll"/> watches the socket, as the kernel lists it in /proc.</summary>
    private static bool InEpollSet(nint epoll, Socket socket) =>
        File.ReadLines($"/proc/self/fdinfo/{epoll}").Any(line => line.StartsWith($"tfd: {socket.SafeHandle.DangerousGetHandle(),8} ", StringComparison.Ordinal));

    [Fact]
    public async Task Bytes_go_both_ways_and_the_timeouts_start_as_the_wrapped_streams()
    {
        using var stream = new PollingSocketStream(_network);
        Assert.Equal((300, 400), (stream.ReadTimeout, stream.WriteTimeout));
        var big = new byte[4 << 20];
        Random.Shared.NextBytes(big);
        // Larger than the socket buffers: the write waits for room while the peer drains it.
        var draining = Task.Run(() =>
        {
            var received = new byte[big.Length];
            for (var done = 0; done < received.Length;) done += _peer.Receive(received, done, received.Length - done, SocketFlags.None);
            return received;
        });
        stream.WriteTimeout = Timeout.Infinite;
        stream.Write(big);
        Assert.Equal(big, await draining);

        _peer.Send("answer"u8);
        var buffer = new byte[16];
        var read = stream.Read(buffer);
        Assert.Equal("answer"u8.ToArray(), buffer[..read]);
    }

    [Fact]
    public void A_read_with_nothing_coming_fails_after_its_timeout_as_NetworkStream_does()
    {
        using var stream = new PollingSocketStream(_network) { ReadTimeout = 250 };
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<IOException>(() => stream.Read(new byte[8]));
        Assert.InRange(clock.ElapsedMilliseconds, 200, 2000);
        Assert.Equal(SocketError.TimedOut, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
    }

    [Fact]
    public void A_peer_that_closes_ends_the_stream_and_a_reset_fails_it()
    {
        using var stream = new PollingSocketStream(_network);
        _peer.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, stream.Read(new byte[8]));
        _peer.LingerState = new LingerOption(true, 0);
        _peer.Close();
        Thread.Sleep(50);
        var error = Assert.Throws<IOException>(() =>
        {
            for (var i = 0; i < 100; i++) stream.Write(new byte[64 << 10]);
        });
        Assert.IsType<SocketException>(error.InnerException);
    }

    [Fact]
    public void A_MySQL_connection_reads_and_writes_through_it()
    {
        var server = MariaDbServer.Shared;
        var builder = new MySqlConnectionStringBuilder
        {
            Server = server.Host, Port = (uint)server.Port, UserID = server.User, Password = server.Password, SslMode = MySqlSslMode.None, Pooling = false,
        };
        using var connection = new MySqlConnection(builder.ConnectionString);
        connection.Open();
        BatchingMySqlConnection.WaitInTheKernel(connection);
        Assert.IsType<PollingSocketStream>(BatchingMySqlConnection.SocketStream(connection));

        using var command = new MySqlCommand("SELECT REPEAT('x', 100000)", connection);
        Assert.Equal(new string('x', 100000), command.ExecuteScalar());
    }
}
