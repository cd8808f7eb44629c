using System.Net;
using System.Net.Sockets;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// A TCP relay on 127.0.0.1 in front of a server that counts round trips: requests of a client
/// that follow a reply of the server. A request sent in several segments, or several statements
/// sent as one batch, count once; so does a connection's first message (a login, say).
/// Clients connect to <see cref="Port"/> instead of the server's.
/// <see cref="Requests"/> keeps what clients sent, as text, to tell which statements went.
/// <see cref="CutAtReply"/> makes the link fail after the server has done a request and before its
/// reply reaches the client, as a network failure at the worst moment would.
/// Threading: every member is safe to call from any thread.
/// </summary>
public sealed class RoundTripCounter : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _host;
    private readonly int _serverPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private int _roundTrips;
    private int _repliesBeforeCut;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _requests = new();

    public RoundTripCounter(string host, int serverPort)
    {
        _host = host;
        _serverPort = serverPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    /// <summary>Round trips since the relay started or since <see cref="Reset"/>, over all connections.</summary>
    public int RoundTrips => Volatile.Read(ref _roundTrips);

    /// <summary>
    /// What clients sent since the relay started or since <see cref="Reset"/>, one string per
    /// segment received, its bytes read as Latin-1 (a statement's text shows as it was sent).
    /// </summary>
    public IReadOnlyList<string> Requests => [.. _requests];

    public void Reset()
    {
        Interlocked.Exchange(ref _roundTrips, 0);
        _requests.Clear();
    }

    /// <summary>
    /// The <paramref name="reply"/>th reply from now (1: the next one) the server sends, on any
    /// connection, is dropped, and that connection closed both ways.
    /// </summary>
    public void CutAtReply(int reply) => Interlocked.Exchange(ref _repliesBeforeCut, reply);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            _accepting.Wait();
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(Socket client)
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using (client)
        {
            client.NoDelay = true;
            try
            {
                await server.ConnectAsync(_host, _serverPort, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                return;
            }
            // True while the last bytes relayed came from the server (or nothing was relayed yet).
            var serverSpokeLast = 1;
            var requests = PumpAsync(client, server, segment =>
            {
                _requests.Enqueue(System.Text.Encoding.Latin1.GetString(segment));
                if (Interlocked.Exchange(ref serverSpokeLast, 0) == 1) Interlocked.Increment(ref _roundTrips);
                return true;
            });
            var replies = PumpAsync(server, client, _ =>
            {
                // A reply's first bytes count it; its later segments pass.
                if (Interlocked.Exchange(ref serverSpokeLast, 1) == 1) return true;
                return Interlocked.Decrement(ref _repliesBeforeCut) != 0;
            });
            await Task.WhenAny(requests, replies).ConfigureAwait(false);
            client.Close();
            server.Close();
            await Task.WhenAll(requests, replies).ConfigureAwait(false);
        }
    }

    /// <summary>Relays until either side closes, or until <paramref name="passing"/>, shown each chunk before it goes on, returns false.</summary>
    private async Task PumpAsync(Socket from, Socket to, Func<byte[], bool> passing)
    {
        var buffer = new byte[64 << 10];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (n == 0 || !passing(buffer[..n])) return;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }
}
