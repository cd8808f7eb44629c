using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace TruckeeFs.Testing.Tahoe;

/// <summary>
/// An in-process Tahoe-LAFS web-API gateway for tests, listening on 127.0.0.1 only, that
/// behaves like the Tahoe 1.18 gateway recorded in <c>shared/tahoe-wapi</c> for the subset a
/// filesystem uses: unlinked uploads (LIT, CHK, SDMF, MDMF), downloads with Tahoe's Range rules
/// and ETags, <c>t=json</c> and friends, directory operations with Tahoe's replace, metadata and
/// error behaviour, checks and manifests. Data lives in memory. Caps are well formed and
/// derived as a real grid derives them (read caps, verify caps and storage indexes), and CHK
/// caps are convergent within one gateway.
///
/// Faults are injected through <see cref="Faults"/>; what was served is counted in
/// <see cref="Counters"/>. Requests are handled one at a time against the data (a real gateway
/// serializes its work on a node too), but latency and faults apply per request in parallel, so
/// concurrency is observable through <see cref="GatewayCounters.MaxInFlight"/>.
/// </summary>
public sealed partial class TahoeTestGateway : IAsyncDisposable, IDisposable
{
    private readonly WebApplication _app;
    private readonly TahoeGrid _grid = new();
    private readonly DateTime _started = DateTime.UtcNow;
    private readonly Lock _clockLock = new();
    private double _lastTime;

    private TahoeTestGateway(WebApplication app, Uri baseUri)
    {
        _app = app;
        BaseUri = baseUri;
    }

    /// <summary>The gateway's root, such as <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri BaseUri { get; }

    /// <summary>Faults to inject; changes take effect for the next request.</summary>
    public GatewayFaultPolicy Faults { get; } = new();

    /// <summary>
    /// When set, requests must carry <c>Authorization: Bearer</c> with this token, as behind an
    /// authenticating proxy; others are answered 401.
    /// </summary>
    public string? RequiredBearerToken { get; set; }

    /// <summary>What the gateway has served so far.</summary>
    public GatewayCounters Counters { get; } = new();

    /// <summary>Starts a gateway on a free loopback port.</summary>
    public static async Task<TahoeTestGateway> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(options =>
        {
            options.Listen(IPAddress.Loopback, 0);
            options.AddServerHeader = false;
            // 16 MiB bodies are part of the recorded workload.
            options.Limits.MaxRequestBodySize = 256L * 1024 * 1024;
        });
        var app = builder.Build();
        TahoeTestGateway? gateway = null;
        app.Run(context => gateway!.HandleAsync(context));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        gateway = new TahoeTestGateway(app, new Uri(address.EndsWith('/') ? address : address + "/"));
        return gateway;
    }

    /// <summary>
    /// Simulates lost shares of an immutable object, as if deleted from the storage servers'
    /// disks: all but <paramref name="sharesToKeep"/> of its three shares disappear.
    /// </summary>
    public void DeleteShares(string cap, int sharesToKeep)
    {
        var parsed = TahoeCapability.Parse(cap) ?? throw new ArgumentException($"not a cap: {cap}", nameof(cap));
        lock (_grid.Sync) _grid.DeleteShares(parsed, sharesToKeep);
    }

    /// <summary>Stops listening; later requests are refused like those to a stopped gateway.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Synchronous <see cref="DisposeAsync"/>.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task HandleAsync(HttpContext context)
    {
        Counters.Started(context.Request.Method);
        var answered = false;
        try
        {
            var latency = Faults.NextLatency();
            if (latency > TimeSpan.Zero) await Task.Delay(latency, context.RequestAborted).ConfigureAwait(false);
            var body = await ReadBodyAsync(context).ConfigureAwait(false);
            GatewayResponse response;
            if (RequiredBearerToken is { } token && context.Request.Headers.Authorization != "Bearer " + token)
            {
                response = GatewayResponse.Text(401, "Unauthorized");
            }
            else if (Faults.ShouldFail())
            {
                Counters.FailureInjected();
                response = GatewayResponse.Text(Faults.FailureStatus, "injected failure");
            }
            else
            {
                response = Handle(context, body);
            }
            Counters.Handled(response.Kind);
            // In flight means received and not yet answered: a client that waits for whole
            // responses before sending more can then never be seen above its own limit.
            Counters.Finished();
            answered = true;
            await WriteAsync(context, response).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        finally
        {
            if (!answered) Counters.Finished();
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>A download body in small flushed pieces, paced to <see cref="GatewayFaultPolicy.DownloadBytesPerSecond"/>.</summary>
    private async Task WriteThrottledAsync(HttpContext context, byte[] body)
    {
        const int Piece = 16 << 10;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var sent = 0; sent < body.Length;)
        {
            var n = Math.Min(Piece, body.Length - sent);
            await context.Response.Body.WriteAsync(body.AsMemory(sent, n), context.RequestAborted).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            sent += n;
            Counters.Downloaded(n);
            var due = TimeSpan.FromSeconds((double)sent / Math.Max(1, Faults.DownloadBytesPerSecond));
            if (due > clock.Elapsed) await Task.Delay(due - clock.Elapsed, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private GatewayResponse Handle(HttpContext context, byte[] body)
    {
        var raw = context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget;
        var question = raw.IndexOf('?', StringComparison.Ordinal);
        var request = new GatewayRequest
        {
            Method = context.Request.Method,
            Path = question < 0 ? raw : raw[..question],
            Query = GatewayRequest.ParseQuery(question < 0 ? "" : raw[(question + 1)..]),
            Headers = context.Request.Headers,
            Body = body,
            Host = context.Request.Host.Value ?? BaseUri.Authority,
        };
        try
        {
            lock (_grid.Sync) return Route(request);
        }
        catch (TahoeWebException e)
        {
            return e.Response;
        }
    }

    private async Task WriteAsync(HttpContext context, GatewayResponse response)
    {
        var http = context.Response;
        http.StatusCode = response.Status;
        http.Headers["X-Frame-Options"] = "DENY";
        http.Headers["Referrer-Policy"] = "no-referrer";
        foreach (var (name, value) in response.Headers) http.Headers.Append(name, value);
        var head = HttpMethods.IsHead(context.Request.Method);
        if (response.Status == 304) return;
        if (head)
        {
            // HEAD reports the length the GET body would have, as Twisted does.
            if ((response.HeadLength ?? (response.Chunked ? null : response.Body.Length)) is { } length) http.ContentLength = length;
            return;
        }
        if (response.Chunked)
            await http.StartAsync(context.RequestAborted).ConfigureAwait(false);
        else
            http.ContentLength = response.Body.Length;
        if (response.Body.Length == 0) return;
        var download = response.Kind == GatewayRequestKind.Download;
        if (response.Body.Length > 1 && Faults.ShouldDrop())
        {
            // Half the body, flushed so the client really receives it, then a reset connection.
            var half = response.Body.Length / 2;
            await http.Body.WriteAsync(response.Body.AsMemory(0, half), context.RequestAborted).ConfigureAwait(false);
            await http.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            if (download) Counters.Downloaded(half);
            Counters.ResponseDropped();
            context.Abort();
            return;
        }
        if (download && Faults.DownloadBytesPerSecond > 0)
        {
            await WriteThrottledAsync(context, response.Body).ConfigureAwait(false);
            return;
        }
        await http.Body.WriteAsync(response.Body, context.RequestAborted).ConfigureAwait(false);
        if (download) Counters.Downloaded(response.Body.Length);
    }

    /// <summary>Link times, strictly increasing so that "created" and "modified" order like real events.</summary>
    private double Now()
    {
        lock (_clockLock)
        {
            var now = Math.Round((DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds, 6);
            _lastTime = now > _lastTime ? now : Math.Round(_lastTime + 0.000001, 6);
            return _lastTime;
        }
    }
}
