using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>How closely an exchange's response is compared with the recording.</summary>
internal enum Strictness
{
    /// <summary>Status, the headers that matter, and the body exactly (JSON structurally, with caps mapped and times ignored).</summary>
    Exact,
    /// <summary>Status and headers as for Exact; JSON bodies by keys and value types only, because their values describe the recorded grid's history.</summary>
    Structural,
}

/// <summary>Compares one actual response with its recording; collects every difference found.</summary>
internal sealed partial class ExchangeComparer(CapMapper mapper, string recordedOrigin, string actualOrigin)
{
    private static readonly HashSet<string> CapKeys = ["ro_uri", "rw_uri", "verify_uri", "cap", "verifycap", "repaircap"];
    private readonly List<string> _problems = [];

    public IReadOnlyList<string> Compare(RecordedExchange expected, RawResponse actual, Strictness strictness)
    {
        _problems.Clear();
        if (expected.Status != actual.Status)
            _problems.Add($"status: expected {expected.Status}, got {actual.Status} ({Preview(actual.Body)})");
        CompareHeaders(expected, actual);
        CompareBody(expected, actual, strictness);
        return [.. _problems];
    }

    private void CompareHeaders(RecordedExchange expected, RawResponse actual)
    {
        foreach (var name in new[] { "Content-Type", "Content-Range", "Content-Disposition" })
            if (expected.ResponseHeader(name) != actual.Header(name))
                _problems.Add($"{name}: expected {expected.ResponseHeader(name) ?? "(none)"}, got {actual.Header(name) ?? "(none)"}");
        foreach (var name in new[] { "Accept-Ranges", "Transfer-Encoding", "Content-Length", "ETag", "Location" })
            if (expected.ResponseHeader(name) is null != actual.Header(name) is null)
                _problems.Add($"{name}: expected {expected.ResponseHeader(name) ?? "(none)"}, got {actual.Header(name) ?? "(none)"}");
        if (expected.ResponseHeader("ETag") is { } etag && actual.Header("ETag") is { } actualEtag && mapper.LearnEtag(etag, actualEtag) is { } etagProblem)
            _problems.Add(etagProblem);
        if (expected.ResponseHeader("Location") is { } location && actual.Header("Location") is { } actualLocation)
        {
            var recordedCap = EscapedCap().Match(location);
            var actualCap = EscapedCap().Match(actualLocation);
            if (recordedCap.Success && actualCap.Success && mapper.LearnCap(Uri.UnescapeDataString(recordedCap.Value), Uri.UnescapeDataString(actualCap.Value)) is { } capProblem)
                _problems.Add("Location: " + capProblem);
            var wanted = mapper.ToActual(location).Replace(recordedOrigin, actualOrigin, StringComparison.Ordinal);
            if (wanted != actualLocation) _problems.Add($"Location: expected {wanted}, got {actualLocation}");
        }
        // A length can be checked exactly only when the body is known exactly; JSON lengths vary with
        // the digits of timestamps, and the body of a HEAD error was never sent.
        var exactBody = expected.ResponseBody.Text is not null && !LooksLikeJson(expected.ResponseBody.Text) || expected.ResponseBody.Bytes is not null
            || expected.ResponseBody.Head is not null && expected.ResponseBody.Head[0] is not ((byte)'[' or (byte)'{');
        var headError = expected.Method == "HEAD" && expected.Status >= 400 && expected.ResponseBody.Length == 0;
        if (exactBody && !headError && expected.ResponseHeader("Content-Length") is { } length && actual.Header("Content-Length") is { } actualLength && length != actualLength
            && !IsCapText(expected.ResponseBody.Text))
            _problems.Add($"Content-Length: expected {length}, got {actualLength}");
    }

    private void CompareBody(RecordedExchange expected, RawResponse actual, Strictness strictness)
    {
        var body = expected.ResponseBody;
        if (body.Exception is not null)
        {
            // Tracebacks were redacted to their last line; the gateway must fail with the same exception.
            var text = Encoding.UTF8.GetString(actual.Body);
            if (!text.Contains(body.Exception, StringComparison.Ordinal))
                _problems.Add($"body: expected a traceback ending in '{body.Exception}', got {Preview(actual.Body)}");
            return;
        }
        if (body.HtmlTitle is not null)
        {
            var title = Title().Match(Encoding.UTF8.GetString(actual.Body));
            if (!title.Success || MaskSi(WebUtilityDecode(title.Groups[1].Value)) != MaskSi(body.HtmlTitle))
                _problems.Add($"HTML title: expected '{body.HtmlTitle}', got '{(title.Success ? title.Groups[1].Value : "(no title)")}'");
            return;
        }
        if (body.Head is not null && body.TryReconstruct() is null && body.Head[0] is (byte)'[' or (byte)'{')
        {
            // A large JSON body of which the recording kept only the first bytes (the latency
            // run's listings): its length varies with timestamp digits, so only the start can match.
            if (!actual.Body.AsSpan().StartsWith(body.Head))
                _problems.Add($"body: expected JSON starting {Quote(Encoding.UTF8.GetString(body.Head))}, got {Preview(actual.Body)}");
            return;
        }
        if (body.Bytes is not null || body.Head is not null)
        {
            if (!body.Matches(actual.Body))
                _problems.Add($"body: expected {body.Length} bytes with SHA-256 {body.Sha256[..12]}…, got {actual.Body.Length} bytes");
            else if (body.Head is not null && !actual.Body.AsSpan().StartsWith(body.Head))
                _problems.Add("body: first bytes differ");
            return;
        }
        var expectedText = body.Text!;
        var actualText = Encoding.UTF8.GetString(actual.Body);
        if (expectedText.StartsWith("<!DOCTYPE", StringComparison.Ordinal))
        {
            // A full HTML page (the upload results page): compared by its title, like the redacted pages.
            var recordedTitle = Title().Match(expectedText).Groups[1].Value;
            var actualTitle = Title().Match(actualText).Groups[1].Value;
            if (recordedTitle != actualTitle) _problems.Add($"HTML title: expected '{recordedTitle}', got '{actualTitle}'");
            return;
        }
        if (LooksLikeJson(expectedText))
        {
            CompareJsonText(expectedText, actualText, strictness);
            return;
        }
        if (IsCapText(expectedText))
        {
            if (mapper.LearnCap(expectedText, actualText) is { } problem) _problems.Add("body: " + problem);
            return;
        }
        var wanted = mapper.ToActual(expectedText).Replace(recordedOrigin, actualOrigin, StringComparison.Ordinal);
        if (wanted != actualText) _problems.Add($"body: expected {Quote(wanted)}, got {Quote(actualText)}");
    }

    private static bool IsCapText(string? text) =>
        text is not null && (text.StartsWith("URI:", StringComparison.Ordinal) || text.StartsWith("ro.URI:", StringComparison.Ordinal)) && !text.Contains('\n', StringComparison.Ordinal);

    private static bool LooksLikeJson(string text)
    {
        var trimmed = text.TrimStart();
        return trimmed.StartsWith('[') || trimmed.StartsWith('{');
    }

    private void CompareJsonText(string expectedText, string actualText, Strictness strictness)
    {
        var expectedLines = expectedText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (expectedLines.Length > 1 && expectedLines.All(l => l.StartsWith('{') && l.EndsWith('}')))
        {
            // One JSON object per line (stream-manifest, stream-deep-check).
            var actualLines = actualText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (actualLines.Length != expectedLines.Length)
                _problems.Add($"body: expected {expectedLines.Length} JSON lines, got {actualLines.Length}");
            for (var i = 0; i < Math.Min(expectedLines.Length, actualLines.Length); i++)
                CompareJsonDocuments(expectedLines[i], actualLines[i], strictness, $"line {i + 1}");
            return;
        }
        CompareJsonDocuments(expectedText, actualText, strictness, "$");
    }

    private void CompareJsonDocuments(string expectedText, string actualText, Strictness strictness, string path)
    {
        JsonNode? actual;
        try
        {
            actual = JsonNode.Parse(actualText);
        }
        catch (JsonException)
        {
            _problems.Add($"{path}: expected JSON, got {Quote(actualText)}");
            return;
        }
        CompareJson(JsonNode.Parse(expectedText), actual, path, null, strictness);
    }

    private void CompareJson(JsonNode? expected, JsonNode? actual, string path, string? key, Strictness strictness)
    {
        var kind = Kind(expected);
        if (kind != Kind(actual))
        {
            _problems.Add($"{path}: expected a {kind}, got {actual?.ToJsonString() ?? "null"}");
            return;
        }
        switch (expected)
        {
            case JsonObject e:
                var a = (JsonObject)actual!;
                // Share numbers and version hashes name the recorded grid's shares.
                if (strictness == Strictness.Structural && key == "sharemap") return;
                var missing = e.Select(p => p.Key).Except(a.Select(p => p.Key)).ToList();
                var extra = a.Select(p => p.Key).Except(e.Select(p => p.Key)).ToList();
                if (missing.Count > 0 || extra.Count > 0)
                    _problems.Add($"{path}: keys differ (missing: {string.Join(", ", missing)}; unexpected: {string.Join(", ", extra)})");
                foreach (var (name, value) in e)
                    if (a.ContainsKey(name)) CompareJson(value, a[name], $"{path}.{name}", name, strictness);
                if (key == "tahoe" && e["linkcrtime"] is not null && a["linkcrtime"] is not null)
                {
                    // Times differ between runs; whether a link was modified after it was made does not.
                    var expectedTouched = e["linkcrtime"]!.GetValue<double>() != e["linkmotime"]!.GetValue<double>();
                    var actualTouched = a["linkcrtime"]!.GetValue<double>() != a["linkmotime"]!.GetValue<double>();
                    if (expectedTouched != actualTouched)
                        _problems.Add($"{path}: expected linkmotime {(expectedTouched ? "after" : "equal to")} linkcrtime");
                }
                break;
            case JsonArray e:
                var array = (JsonArray)actual!;
                if (strictness == Strictness.Structural && key != "path") return;
                if (e.Count != array.Count)
                {
                    _problems.Add($"{path}: expected {e.Count} elements, got {array.Count}");
                    return;
                }
                for (var i = 0; i < e.Count; i++) CompareJson(e[i], array[i], $"{path}[{i}]", key, strictness);
                break;
            case JsonValue when kind == "string":
                var expectedString = expected.GetValue<string>();
                var actualString = actual!.GetValue<string>();
                if (strictness == Strictness.Structural && key is not ("type" or "path")) return;
                if (key is not null && CapKeys.Contains(key) && expectedString.Length > 0)
                {
                    if (mapper.LearnCap(expectedString, actualString) is { } problem) _problems.Add($"{path}: {problem}");
                }
                else if (mapper.ToActual(expectedString) != actualString)
                {
                    _problems.Add($"{path}: expected {Quote(mapper.ToActual(expectedString))}, got {Quote(actualString)}");
                }
                break;
            case JsonValue when kind == "number":
                if (strictness == Strictness.Structural || key is "linkcrtime" or "linkmotime") return;
                if (expected.GetValue<decimal>() != actual!.GetValue<decimal>())
                    _problems.Add($"{path}: expected {expected.ToJsonString()}, got {actual.ToJsonString()}");
                break;
            case JsonValue when kind == "boolean":
                if (strictness == Strictness.Exact && expected.GetValue<bool>() != actual!.GetValue<bool>())
                    _problems.Add($"{path}: expected {expected.ToJsonString()}, got {actual.ToJsonString()}");
                break;
        }
    }

    private static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "object",
        JsonArray => "array",
        _ => node.GetValueKind() switch
        {
            JsonValueKind.String => "string",
            JsonValueKind.Number => "number",
            JsonValueKind.True or JsonValueKind.False => "boolean",
            _ => "null",
        },
    };

    private static string MaskSi(string title) => SiField().Replace(title, "SI=*");

    private static string WebUtilityDecode(string text) => System.Net.WebUtility.HtmlDecode(text);

    private static string Quote(string text) => JsonSerializer.Serialize(text.Length > 300 ? text[..300] + "…" : text);

    private static string Preview(byte[] body) => Quote(Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 200)));

    [GeneratedRegex("<title>(.*?)</title>", RegexOptions.Singleline)]
    private static partial Regex Title();

    [GeneratedRegex("SI=[a-z2-7]+")]
    private static partial Regex SiField();

    [GeneratedRegex("URI%3A[^?&\"]+")]
    private static partial Regex EscapedCap();
}
