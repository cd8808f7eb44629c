using System.Text;
using System.Text.RegularExpressions;
using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// Replays every recorded exchange, in recording order, against one <see cref="TahoeTestGateway"/>
/// (later exchanges use caps that earlier ones created, across groups), and keeps what differed
/// for each exchange so that the contract test reports them one by one.
/// </summary>
public sealed partial class RecordingReplay : IAsyncLifetime
{
    private const string RecordedOrigin = "http://127.0.0.1:3456";

    /// <summary>
    /// Exchanges whose JSON describes the recorded grid rather than the web API (node and
    /// server statistics, share placement after earlier runs' repairs, directory sizes), so
    /// only their keys and value types are compared. Statuses and headers are still exact.
    /// </summary>
    internal static readonly IReadOnlySet<string> StructuralGroups = new HashSet<string> { "status", "check_manifest" };

    /// <summary>
    /// Steps the recording did outside the web API, replayed through the gateway's test hooks:
    /// share files deleted from the storage servers' disks before these requests.
    /// </summary>
    private static readonly Dictionary<string, int> SharesKeptBefore = new()
    {
        ["get_file_all_shares_deleted"] = 0,
        ["get_file_two_of_three_shares_deleted"] = 1,
    };

    private readonly Dictionary<string, IReadOnlyList<string>> _outcomes = new(StringComparer.Ordinal);
    private readonly CapMapper _mapper = new();
    private TahoeTestGateway? _gateway;

    /// <summary>Caps the recording used without creating them in a recorded exchange, uploaded before use.</summary>
    internal List<string> Preloaded { get; } = [];

    internal IReadOnlyList<string> OutcomeOf(string name) => _outcomes[name];

    internal static Strictness StrictnessOf(RecordedExchange exchange) =>
        StructuralGroups.Contains(exchange.Group) || exchange.Target.Contains("t=check", StringComparison.Ordinal)
            ? Strictness.Structural
            : Strictness.Exact;

    /// <summary>Starts the gateway and replays all exchanges.</summary>
    public async Task InitializeAsync()
    {
        _gateway = await TahoeTestGateway.StartAsync();
        var actualOrigin = _gateway.BaseUri.GetLeftPart(UriPartial.Authority);
        var comparer = new ExchangeComparer(_mapper, RecordedOrigin, actualOrigin);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        foreach (var exchange in Recordings.Exchanges)
        {
            try
            {
                await PreloadAsync(exchange, timeout.Token);
                if (SharesKeptBefore.TryGetValue(exchange.Name, out var keep))
                    _gateway.DeleteShares(ChkCaps().Match(_mapper.ToActual(exchange.Target)).Value, keep);
                var response = await SendAsync(exchange, timeout.Token);
                _outcomes[exchange.Name] = comparer.Compare(exchange, response, StrictnessOf(exchange));
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException or FormatException or System.Net.Sockets.SocketException)
            {
                _outcomes[exchange.Name] = [$"replay failed: {e.GetType().Name}: {e.Message}"];
            }
        }
    }

    /// <summary>Stops the gateway.</summary>
    public async Task DisposeAsync()
    {
        if (_gateway is not null) await _gateway.DisposeAsync();
    }

    private async Task<RawResponse> SendAsync(RecordedExchange exchange, CancellationToken cancellationToken)
    {
        byte[]? body = null;
        if (exchange.RequestBody is { } recorded)
        {
            body = recorded.Text is not null
                ? Encoding.UTF8.GetBytes(_mapper.ToActual(recorded.Text))
                : recorded.TryReconstruct() ?? throw new InvalidOperationException($"cannot rebuild the {recorded.Length}-byte request body");
        }
        var chunked = exchange.RequestHeader("Transfer-Encoding") is "chunked";
        var headers = new List<KeyValuePair<string, string>>();
        foreach (var (name, value) in exchange.RequestHeaders)
        {
            headers.Add(name switch
            {
                "Host" => new(name, _gateway!.BaseUri.Authority),
                "Content-Length" => new(name, (body?.Length ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                _ => new(name, _mapper.ToActual(value)),
            });
        }
        return await RawHttpClient.SendAsync(_gateway!.BaseUri, exchange.Method, _mapper.ToActual(exchange.Target), headers, body, chunked, cancellationToken);
    }

    /// <summary>
    /// The latency run read files uploaded outside the recording. When a download names a CHK cap
    /// nothing has created and its recorded body can be rebuilt exactly, the bytes are uploaded
    /// first and the caps paired.
    /// </summary>
    private async Task PreloadAsync(RecordedExchange exchange, CancellationToken cancellationToken)
    {
        if (exchange.Method != "GET" || exchange.Status != 200 || exchange.Target.Contains('?', StringComparison.Ordinal)) return;
        var cap = ChkCaps().Match(exchange.Target);
        if (!cap.Success || _mapper.Knows(cap.Groups[1].Value)) return;
        if (exchange.ResponseBody.TryReconstruct() is not { } data) return;
        var upload = await RawHttpClient.SendAsync(_gateway!.BaseUri, "PUT", "/uri",
            [new("Host", _gateway.BaseUri.Authority), new("Content-Length", data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))],
            data, chunked: false, cancellationToken);
        if (_mapper.LearnCap(cap.Value, Encoding.UTF8.GetString(upload.Body)) is { } problem)
            throw new InvalidOperationException($"preloading {cap.Value}: {problem}");
        Preloaded.Add(exchange.Name);
    }

    [GeneratedRegex("URI:CHK:([a-z2-7]{26}):[a-z2-7]{52}:[0-9]+:[0-9]+:[0-9]+")]
    private static partial Regex ChkCaps();
}
