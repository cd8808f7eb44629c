using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// A bare HTTP/1.1 client for replaying recordings byte for byte. HttpClient would normalize
/// what the recordings test on purpose: dot segments (a child named <c>..</c>), double slashes,
/// requests without Content-Length, and chunked request bodies.
/// </summary>
internal static class RawHttpClient
{
    public static async Task<RawResponse> SendAsync(Uri baseUri, string method, string target, IEnumerable<KeyValuePair<string, string>> headers, byte[]? body, bool chunked, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(baseUri.Host, baseUri.Port, cancellationToken);
        var stream = client.GetStream();
        var head = new StringBuilder();
        head.Append(CultureInfo.InvariantCulture, $"{method} {target} HTTP/1.1\r\n");
        foreach (var (name, value) in headers) head.Append(CultureInfo.InvariantCulture, $"{name}: {value}\r\n");
        head.Append("Connection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.UTF8.GetBytes(head.ToString()), cancellationToken);
        if (body is not null)
        {
            if (chunked)
            {
                for (var offset = 0; offset < body.Length; offset += 65536)
                {
                    var size = Math.Min(65536, body.Length - offset);
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"{size:x}\r\n"), cancellationToken);
                    await stream.WriteAsync(body.AsMemory(offset, size), cancellationToken);
                    await stream.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
                }
                await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), cancellationToken);
            }
            else
            {
                await stream.WriteAsync(body, cancellationToken);
            }
        }
        var reader = new BufferedReader(stream);
        var statusLine = await reader.ReadLineAsync(cancellationToken);
        var status = int.Parse(statusLine.Split(' ')[1], CultureInfo.InvariantCulture);
        var responseHeaders = new List<KeyValuePair<string, string>>();
        for (var line = await reader.ReadLineAsync(cancellationToken); line.Length > 0; line = await reader.ReadLineAsync(cancellationToken))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            responseHeaders.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }
        var response = new RawResponse(status, responseHeaders, []);
        if (method == "HEAD" || status is 204 or 304 || status < 200) return response;
        if (string.Equals(response.Header("Transfer-Encoding"), "chunked", StringComparison.OrdinalIgnoreCase))
        {
            using var data = new MemoryStream();
            while (true)
            {
                var size = Convert.ToInt32(await reader.ReadLineAsync(cancellationToken), 16);
                if (size == 0)
                {
                    await reader.ReadLineAsync(cancellationToken);
                    break;
                }
                data.Write(await reader.ReadExactlyAsync(size, cancellationToken));
                await reader.ReadLineAsync(cancellationToken);
            }
            return response with { Body = data.ToArray() };
        }
        if (response.Header("Content-Length") is { } length)
            return response with { Body = await reader.ReadExactlyAsync(int.Parse(length, CultureInfo.InvariantCulture), cancellationToken) };
        return response with { Body = await reader.ReadToEndAsync(cancellationToken) };
    }

    private sealed class BufferedReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[65536];
        private int _start;
        private int _end;

        public async Task<string> ReadLineAsync(CancellationToken cancellationToken)
        {
            var line = new List<byte>();
            while (true)
            {
                if (_start == _end && !await FillAsync(cancellationToken)) throw new EndOfStreamException("connection closed inside a header line");
                var b = _buffer[_start++];
                if (b == '\n') return Encoding.UTF8.GetString([.. line]).TrimEnd('\r');
                line.Add(b);
            }
        }

        public async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
        {
            var result = new byte[count];
            var n = 0;
            while (n < count)
            {
                if (_start == _end && !await FillAsync(cancellationToken)) throw new EndOfStreamException($"connection closed after {n} of {count} body bytes");
                var take = Math.Min(count - n, _end - _start);
                Array.Copy(_buffer, _start, result, n, take);
                _start += take;
                n += take;
            }
            return result;
        }

        public async Task<byte[]> ReadToEndAsync(CancellationToken cancellationToken)
        {
            using var data = new MemoryStream();
            do data.Write(_buffer, _start, _end - _start);
            while (await FillAsync(cancellationToken));
            return data.ToArray();
        }

        private async Task<bool> FillAsync(CancellationToken cancellationToken)
        {
            _start = 0;
            _end = await stream.ReadAsync(_buffer, cancellationToken);
            return _end > 0;
        }
    }
}

internal sealed record RawResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;
}
