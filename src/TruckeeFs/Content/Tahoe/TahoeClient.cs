using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Flurl.Http;
using Microsoft.Win32.SafeHandles;

namespace TruckeeFs.Content.Tahoe;

/// <summary>
/// A small client for the Tahoe-LAFS web API: immutable uploads and ranged downloads for file
/// contents, and the directory operations MIRROR mode and <c>truckeefs init</c> need.
///
/// Every request holds one of <see cref="TahoeOptions.MaxConnections"/> slots and must finish
/// within <see cref="TahoeOptions.NetTimeout"/>. Transient failures (refused or reset
/// connections, timeouts, 5xx answers that are not Tahoe's own exceptions, bodies shorter than
/// announced) are retried with exponential backoff until about three NetTimeouts have passed;
/// operations that are not idempotent are retried only when the request surely never reached
/// the gateway or the gateway refused it before acting (503). What finally fails throws
/// <see cref="ContentStoreException"/> naming the gateway; refusals (4xx) throw
/// <see cref="TahoeRequestException"/> carrying Tahoe's own message.
///
/// Threading: safe for concurrent use. Dispose once nothing is in flight.
/// </summary>
public sealed partial class TahoeClient : IDisposable
{
    private const int MaxAttempts = 8;
    private const int StreamChunk = 1 << 18;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    private readonly TahoeOptions _options;
    private readonly FlurlClient _client;
    private readonly SemaphoreSlim _slots;
    private readonly string _root;

    /// <summary>Creates a client for the gateway in <paramref name="options"/>.</summary>
    public TahoeClient(TahoeOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.NetTimeout, TimeSpan.Zero);
        _options = options;
        _root = options.TahoeUrl.GetLeftPart(UriPartial.Path).TrimEnd('/');
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.MaxConnections,
            ConnectTimeout = options.NetTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            AutomaticDecompression = DecompressionMethods.None,
        };
        // Timeouts are enforced per attempt with a token, so the HttpClient's own stays infinite.
        _client = new FlurlClient(new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan });
        _slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
    }

    /// <summary>The gateway this client talks to.</summary>
    public Uri GatewayUrl => _options.TahoeUrl;

    /// <summary>
    /// Uploads the file at <paramref name="path"/> as an immutable CHK file (streamed, never
    /// MDMF/SDMF) and returns its cap. Files of up to 55 bytes become literal caps computed
    /// locally, as Tahoe would compute them, without a request. The file is opened before this
    /// returns, so the caller may rename or delete it at once; its bytes must not change until
    /// the upload completes.
    /// </summary>
    public Task<string> UploadImmutableAsync(string path, CancellationToken cancellationToken = default) =>
        UploadImmutableAsync(File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), cancellationToken);

    private async Task<string> UploadImmutableAsync(SafeFileHandle file, CancellationToken cancellationToken)
    {
        using var _ = file;
        var length = RandomAccess.GetLength(file);
        if (length <= TahoeCaps.MaxLiteralSize)
        {
            var bytes = new byte[length];
            return TahoeCaps.LiteralCap(bytes.AsSpan(0, FileBody.ReadFully(file, bytes, 0)));
        }
        var cap = await SendAsync("upload", HttpMethod.Put, "/uri?format=CHK", idempotent: true, cancellationToken,
            content: () => new FileBody(file, length)).ConfigureAwait(false);
        // A cap for other bytes than those sent would silently corrupt the file: check the size it names.
        if (!TahoeCaps.TryGetChkSize(cap, out var size) || size != length)
            throw new ContentStoreException($"Tahoe gateway {_options.TahoeUrl} answered an upload of {length} bytes with '{cap}'");
        return cap;
    }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/> of the
    /// file a cap names; fewer only at the end of the file. Literal caps are decoded locally.
    /// Throws <see cref="ContentNotFoundException"/> when the grid cannot find the file.
    /// </summary>
    public async Task<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (TahoeCaps.TryDecodeLiteral(cap, out var literal))
        {
            if (offset >= literal.Length) return 0;
            var n = (int)Math.Min(buffer.Length, literal.Length - offset);
            literal.AsMemory((int)offset, n).CopyTo(buffer);
            return n;
        }
        var wanted = (long)buffer.Length;
        if (TahoeCaps.TryGetChkSize(cap, out var size))
        {
            // Never ask past the known end: Tahoe answers such ranges with the whole file or 416.
            if (offset >= size) return 0;
            wanted = Math.Min(wanted, size - offset);
        }
        if (wanted == 0) return 0;
        var range = string.Create(CultureInfo.InvariantCulture, $"bytes={offset}-{offset + wanted - 1}");
        return await SendAsync("read", HttpMethod.Get, "/uri/" + EscapeCap(cap), idempotent: true, cancellationToken,
            range: range, notFoundCap: cap,
            receive: async (response, token) =>
            {
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) return 0;
                var skip = 0L;
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    // Tahoe ignores ranges it considers invalid and sends the whole file.
                    skip = offset;
                }
                else if (response.Content.Headers.ContentRange is not { From: { } from } || from != offset)
                {
                    throw new TransientException($"answered range {response.Content.Headers.ContentRange} for {range}");
                }
                return await ReadBodyAsync(response, skip, buffer[..(int)wanted], token).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams bytes [<paramref name="offset"/>, <paramref name="offset"/>+<paramref name="length"/>)
    /// of the file a cap names to <paramref name="sink"/>, in order, as they arrive: one ranged GET
    /// however long the range. A body cut short is retried like any transient failure, resuming
    /// after the bytes already delivered (each byte reaches the sink once). Returns the count
    /// delivered, less than asked only at the end of the file.
    /// </summary>
    public async Task<long> StreamAsync(string cap, long offset, long length, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (TahoeCaps.TryDecodeLiteral(cap, out var literal))
        {
            if (offset >= literal.Length) return 0;
            var n = (int)Math.Min(length, literal.Length - offset);
            await sink(literal.AsMemory((int)offset, n), cancellationToken).ConfigureAwait(false);
            return n;
        }
        if (TahoeCaps.TryGetChkSize(cap, out var size))
        {
            if (offset >= size) return 0;
            length = Math.Min(length, size - offset);
        }
        if (length <= 0) return 0;
        var range = string.Create(CultureInfo.InvariantCulture, $"bytes={offset}-{offset + length - 1}");
        long delivered = 0;
        return await SendAsync("read", HttpMethod.Get, "/uri/" + EscapeCap(cap), idempotent: true, cancellationToken,
            range: range, notFoundCap: cap,
            receive: async (response, token) =>
            {
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) return delivered;
                // Tahoe ignores ranges it considers invalid and sends the whole file.
                var skip = response.StatusCode == HttpStatusCode.OK ? offset : 0;
                if (response.StatusCode != HttpStatusCode.OK && (response.Content.Headers.ContentRange is not { From: { } from } || from != offset))
                    throw new TransientException($"answered range {response.Content.Headers.ContentRange} for {range}");
                // A retry after a cut body resends the whole range: skip what the sink already has.
                skip += delivered;
                var announced = response.Content.Headers.ContentLength;
                await using var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(StreamChunk);
                try
                {
                    long received = 0;
                    while (delivered < length)
                    {
                        var n = await body.ReadAsync(buffer.AsMemory(0, StreamChunk), token).ConfigureAwait(false);
                        if (n == 0) break;
                        received += n;
                        var start = (int)Math.Min(n, skip);
                        skip -= start;
                        var useful = (int)Math.Min(n - start, length - delivered);
                        if (useful <= 0) continue;
                        await sink(buffer.AsMemory(start, useful), token).ConfigureAwait(false);
                        delivered += useful;
                    }
                    // The body ended early: short only if the gateway announced more than it sent.
                    if (delivered < length && announced is { } announcedLength && received < announcedLength)
                        throw new TransientException($"body cut short: {received} of {announcedLength} bytes");
                    return delivered;
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }).ConfigureAwait(false);
    }

    /// <summary>Creates an empty writable directory (SDMF) linked nowhere and returns its write cap.</summary>
    public Task<string> CreateDirectoryAsync(CancellationToken cancellationToken = default) =>
        SendAsync("mkdir", HttpMethod.Post, "/uri?t=mkdir", idempotent: false, cancellationToken);

    /// <summary>
    /// Makes the directory at <paramref name="path"/> under <paramref name="dircap"/> (and any
    /// missing parents, as Tahoe does) and returns its cap; an existing directory is kept.
    /// Throws <see cref="TahoeRequestException"/> (400) when a file has that name.
    /// </summary>
    public Task<string> MkdirAsync(string dircap, string path, CancellationToken cancellationToken = default) =>
        SendAsync("mkdir", HttpMethod.Post, ChildUrl(dircap, path) + "?t=mkdir", idempotent: true, cancellationToken);

    /// <summary>
    /// Links <paramref name="cap"/> at <paramref name="path"/> under <paramref name="dircap"/>,
    /// creating missing parent directories. With <paramref name="replace"/> false an existing
    /// name is left alone and <see cref="TahoeRequestException"/> (409) is thrown.
    /// </summary>
    public async Task LinkAsync(string dircap, string path, string cap, bool replace = true, CancellationToken cancellationToken = default)
    {
        var url = ChildUrl(dircap, path) + "?t=uri" + (replace ? "" : "&replace=false");
        await SendAsync("link", HttpMethod.Put, url, idempotent: replace, cancellationToken,
            content: () => new ByteArrayContent(Encoding.ASCII.GetBytes(cap))).ConfigureAwait(false);
    }

    /// <summary>
    /// Renames a child within one directory. Tahoe strips spaces around names in renames, so
    /// names that begin or end with whitespace are refused here rather than renamed wrongly.
    /// </summary>
    public async Task RenameAsync(string dircap, string fromName, string toName, bool replace = true, CancellationToken cancellationToken = default)
    {
        CheckRenameName(fromName);
        CheckRenameName(toName);
        var url = "/uri/" + EscapeCap(dircap) + "?t=rename&from_name=" + Uri.EscapeDataString(fromName) + "&to_name=" + Uri.EscapeDataString(toName)
            + (replace ? "" : "&replace=false");
        await SendAsync("rename", HttpMethod.Post, url, idempotent: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves a child to another directory (<paramref name="toDirectory"/> is a dircap, optionally
    /// followed by <c>/sub/path</c>). Tahoe links the new name before it unlinks the old one,
    /// so after a crash the child may be linked in both places, never in neither.
    /// </summary>
    public async Task RelinkAsync(string fromDircap, string fromName, string toDirectory, string toName, bool replace = true, CancellationToken cancellationToken = default)
    {
        CheckRenameName(fromName);
        CheckRenameName(toName);
        var url = "/uri/" + EscapeCap(fromDircap) + "?t=relink&from_name=" + Uri.EscapeDataString(fromName)
            + "&to_dir=" + Uri.EscapeDataString(toDirectory) + "&to_name=" + Uri.EscapeDataString(toName) + (replace ? "" : "&replace=false");
        await SendAsync("relink", HttpMethod.Post, url, idempotent: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Unlinks the child at <paramref name="path"/> (a whole subtree for a directory: Tahoe does
    /// not check emptiness) and returns the cap it named.
    /// </summary>
    public Task<string> UnlinkAsync(string dircap, string path, CancellationToken cancellationToken = default) =>
        SendAsync("unlink", HttpMethod.Delete, ChildUrl(dircap, path), idempotent: false, cancellationToken);

    /// <summary>Lists a directory (<c>t=json</c>).</summary>
    public async Task<TahoeDirectoryListing> ListAsync(string dircap, CancellationToken cancellationToken = default)
    {
        var json = await SendAsync("list", HttpMethod.Get, "/uri/" + EscapeCap(dircap) + "?t=json", idempotent: true, cancellationToken).ConfigureAwait(false);
        try
        {
            return TahoeDirectoryListing.Parse(json);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new ContentStoreException($"Tahoe gateway {_options.TahoeUrl} sent an unreadable listing for a directory", e);
        }
    }

    /// <summary>Releases the connections.</summary>
    public void Dispose()
    {
        _client.Dispose();
        _slots.Dispose();
    }

    private static string EscapeCap(string cap) => Uri.EscapeDataString(cap);

    private static string ChildUrl(string dircap, string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0) throw new ArgumentException("a child path needs at least one name", nameof(path));
        foreach (var segment in segments)
            // HTTP clients resolve dot segments before sending, so these names cannot reach the gateway intact.
            if (segment is "." or "..") throw new ArgumentException($"'{segment}' cannot be sent as a Tahoe child name", nameof(path));
        return "/uri/" + EscapeCap(dircap) + "/" + string.Join('/', segments.Select(Uri.EscapeDataString));
    }

    private static void CheckRenameName(string name)
    {
        if (name.Length == 0 || name != name.Trim() || name.Contains('/', StringComparison.Ordinal))
            throw new ArgumentException($"Tahoe cannot rename '{name}' exactly: names are stripped and may not contain '/'", nameof(name));
    }

    private Task<string> SendAsync(string operation, HttpMethod method, string pathAndQuery, bool idempotent, CancellationToken cancellationToken, Func<HttpContent>? content = null) =>
        SendAsync(operation, method, pathAndQuery, idempotent, cancellationToken, content: content, receive: async (response, token) =>
            (await response.Content.ReadAsStringAsync(token).ConfigureAwait(false)).Trim());

    /// <summary>One operation: attempts with backoff until success, a refusal, or the retry budget is spent.</summary>
    private async Task<T> SendAsync<T>(
        string operation, HttpMethod method, string pathAndQuery, bool idempotent, CancellationToken cancellationToken,
        Func<HttpResponseMessage, CancellationToken, Task<T>> receive, Func<HttpContent>? content = null, string? range = null, string? notFoundCap = null)
    {
        var url = _root + pathAndQuery;
        var started = Stopwatch.StartNew();
        var budget = _options.NetTimeout * 3;
        var backoff = FirstBackoff;
        for (var attempt = 1; ; attempt++)
        {
            string failure;
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attemptTimeout.CancelAfter(_options.NetTimeout);
            var sent = false;
            try
            {
                var request = new FlurlRequest(new Flurl.Url(url)) { Client = _client };
                request.Settings.AllowedHttpStatusRange = "*";
                request.Settings.Timeout = null;
                if (_options.AuthToken is { } token) request.Headers["Authorization"] = "Bearer " + token;
                // Tahoe then reports unexpected exceptions as a plain-text traceback instead of an HTML page.
                request.Headers["Accept"] = "text/plain, */*";
                if (range is not null) request.Headers["Range"] = range;
                using var response = await request.SendAsync(method, content?.Invoke(), attemptTimeout.Token, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
                sent = true;
                var status = (int)response.StatusCode;
                if (status < 300 || status == 416 && range is not null)
                    return await receive(response, attemptTimeout.Token).ConfigureAwait(false);
                var (message, tahoeException) = await ErrorMessageAsync(response, attemptTimeout.Token).ConfigureAwait(false);
                if (notFoundCap is not null && status is 404 or 410 or 400) throw new ContentNotFoundException(notFoundCap);
                // 5xx is transient, except Tahoe's own exceptions (NotWriteableError and the like), which would only repeat.
                if (status < 500 || status == 501 || tahoeException) throw new TahoeRequestException(response.StatusCode, $"Tahoe gateway {_options.TahoeUrl} refused {operation}: {message}");
                failure = $"HTTP {status}: {message}";
                // A 503 is refused before anything was done; other 5xx may have done half an operation.
                if (!idempotent && status != 503) throw new ContentStoreException($"Tahoe gateway {_options.TahoeUrl} failed {operation}: {failure}");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (IsTransportFailure(e))
            {
                failure = Describe(e, attemptTimeout.IsCancellationRequested);
                if (!idempotent && (sent || !IsConnectFailure(e)))
                    throw new ContentStoreException($"Tahoe gateway {_options.TahoeUrl} failed {operation}: {failure}", e);
            }
            finally
            {
                _slots.Release();
            }
            if (attempt >= MaxAttempts || started.Elapsed + backoff > budget)
                throw new ContentStoreException($"Tahoe gateway {_options.TahoeUrl} failed {operation} after {attempt} attempts in {started.Elapsed.TotalSeconds:0.0} s: {failure}");
            await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>
    /// Copies the body into <paramref name="buffer"/> after skipping <paramref name="skip"/>
    /// bytes, and checks that as many bytes arrived as announced: Tahoe can only cut a body
    /// short when a download fails after the headers were sent.
    /// </summary>
    private static async Task<int> ReadBodyAsync(HttpResponseMessage response, long skip, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var announced = response.Content.Headers.ContentLength;
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var scratch = skip > 0 ? new byte[(int)Math.Min(skip, 1 << 16)] : [];
        long received = 0;
        while (skip > 0)
        {
            var n = await body.ReadAsync(scratch.AsMemory(0, (int)Math.Min(skip, scratch.Length)), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            skip -= n;
            received += n;
        }
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = await body.ReadAsync(buffer[filled..], cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
        }
        received += filled;
        // Drain what the caller did not ask for, so that the length can be checked.
        var rest = new byte[1 << 16];
        for (int n; (n = await body.ReadAsync(rest, cancellationToken).ConfigureAwait(false)) > 0;) received += n;
        if (announced is { } length && received != length)
            throw new TransientException($"body cut short: {received} of {length} bytes");
        return filled;
    }

    /// <summary>Tahoe's message from an error body, and whether it is one of Tahoe's own exceptions (a traceback).</summary>
    private static async Task<(string Message, bool TahoeException)> ErrorMessageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = (await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)).Trim();
        if (text.StartsWith("Traceback", StringComparison.Ordinal))
        {
            // The last line names the exception: "Failure: allmydata.mutable.common.NotWriteableError: …".
            var last = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
            return (last.StartsWith("Failure: ", StringComparison.Ordinal) ? last[9..] : last, true);
        }
        if (response.Content.Headers.ContentType is { MediaType: "text/html" } && HtmlTitle().Match(text) is { Success: true } title)
        {
            // Path-walking errors come as a small page: "<title>404 - Error</title> … <p>No such child: x</p>".
            var heading = StatusPrefix().Replace(WebUtility.HtmlDecode(title.Groups[1].Value).Trim(), "");
            var detail = HtmlParagraph().Match(text) is { Success: true } p ? WebUtility.HtmlDecode(p.Groups[1].Value).Trim() : "";
            text = detail is "" or "no details" ? heading : heading is "Error" ? detail : $"{heading}: {detail}";
        }
        return (text.Length > 2000 ? text[..2000] + "…" : text, false);
    }

    private static bool IsTransportFailure(Exception e) =>
        e is not ContentStoreException and (FlurlHttpException or HttpRequestException or IOException or OperationCanceledException or TransientException);

    private static bool IsConnectFailure(Exception e) =>
        (e as HttpRequestException ?? e.InnerException as HttpRequestException)?.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError;

    private static string Describe(Exception e, bool timedOut)
    {
        if (timedOut) return "no answer within the network timeout";
        var inner = e;
        while (inner is FlurlHttpException && inner.InnerException is not null) inner = inner.InnerException;
        return inner.Message;
    }

    [GeneratedRegex("<title>(.*?)</title>", RegexOptions.Singleline)]
    private static partial Regex HtmlTitle();

    [GeneratedRegex("<p>(.*?)</p>", RegexOptions.Singleline)]
    private static partial Regex HtmlParagraph();

    [GeneratedRegex("^[0-9]{3} - ")]
    private static partial Regex StatusPrefix();

    /// <summary>A failure worth retrying that no library reports: a short body or a wrong range.</summary>
    private sealed class TransientException(string message) : Exception(message);
}

/// <summary>The gateway refused a request (4xx, or one of Tahoe's own exceptions); the message is Tahoe's.</summary>
public sealed class TahoeRequestException(HttpStatusCode status, string message) : ContentStoreException(message)
{
    /// <summary>The HTTP status the gateway answered with (409 for an existing name, 404 for a missing one, …).</summary>
    public HttpStatusCode Status { get; } = status;
}
