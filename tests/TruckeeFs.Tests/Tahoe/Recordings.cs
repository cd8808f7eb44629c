using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// The recorded exchanges of a real Tahoe-LAFS 1.18 gateway (shared/tahoe-wapi/recordings.jsonl),
/// found beside the repository (the layout CI uses) or at <c>TRUCKEEFS_TAHOE_RECORDINGS</c>.
/// </summary>
internal static class Recordings
{
    private static readonly Lazy<IReadOnlyList<RecordedExchange>> All = new(Load);

    public static IReadOnlyList<RecordedExchange> Exchanges => All.Value;

    public static string FindFile()
    {
        if (Environment.GetEnvironmentVariable("TRUCKEEFS_TAHOE_RECORDINGS") is { Length: > 0 } configured) return configured;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "tahoe-wapi", "recordings.jsonl");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("shared/tahoe-wapi/recordings.jsonl was not found beside the repository; set TRUCKEEFS_TAHOE_RECORDINGS");
    }

    private static IReadOnlyList<RecordedExchange> Load() =>
        [.. File.ReadLines(FindFile()).Where(l => l.Length > 0).Select(l => RecordedExchange.Parse(JsonDocument.Parse(l).RootElement))];
}

/// <summary>One recorded request and response.</summary>
internal sealed record RecordedExchange(
    int Seq, string Name, string Group, string? Note,
    string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> RequestHeaders, RecordedBody? RequestBody,
    int Status, IReadOnlyList<KeyValuePair<string, string>> ResponseHeaders, RecordedBody ResponseBody)
{
    public static RecordedExchange Parse(JsonElement e)
    {
        var request = e.GetProperty("request");
        var response = e.GetProperty("response");
        return new RecordedExchange(
            e.GetProperty("seq").GetInt32(),
            e.GetProperty("name").GetString()!,
            e.GetProperty("group").GetString()!,
            e.TryGetProperty("note", out var note) ? note.GetString() : null,
            request.GetProperty("method").GetString()!,
            request.GetProperty("target").GetString()!,
            Headers(request.GetProperty("headers")),
            request.GetProperty("body").ValueKind == JsonValueKind.Null ? null : RecordedBody.Parse(request.GetProperty("body")),
            response.GetProperty("status").GetInt32(),
            Headers(response.GetProperty("headers")),
            RecordedBody.Parse(response.GetProperty("body")));
    }

    public string? ResponseHeader(string name) =>
        ResponseHeaders.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    public string? RequestHeader(string name) =>
        RequestHeaders.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    private static List<KeyValuePair<string, string>> Headers(JsonElement list) =>
        [.. list.EnumerateArray().Select(h => new KeyValuePair<string, string>(h[0].GetString()!, h[1].GetString()!))];
}

/// <summary>
/// A recorded body: its length and SHA-256 always, plus the full text or bytes when they were
/// kept, or only the first bytes, a page title or the exception line when they were not.
/// </summary>
internal sealed record RecordedBody(long Length, string Sha256, string? Text, byte[]? Bytes, byte[]? Head, string? HtmlTitle, string? Exception)
{
    public static RecordedBody Parse(JsonElement e) => new(
        e.GetProperty("length").GetInt64(),
        e.GetProperty("sha256").GetString()!,
        e.TryGetProperty("text", out var text) ? text.GetString() : null,
        e.TryGetProperty("base64", out var b64) ? Convert.FromBase64String(b64.GetString()!) : null,
        e.TryGetProperty("head_hex", out var head) ? Convert.FromHexString(head.GetString()!) : null,
        e.TryGetProperty("html_title", out var title) ? title.GetString() : null,
        e.TryGetProperty("exception", out var exception) ? exception.GetString() : null);

    /// <summary>
    /// The exact bytes, when the recording kept them or they can be rebuilt: the large bodies
    /// are the README's pattern(n, seed) (byte i = (i·7 + seed) mod 251) or one repeated byte,
    /// and a rebuild counts only if its SHA-256 matches the recorded one.
    /// </summary>
    public byte[]? TryReconstruct()
    {
        if (Bytes is not null) return Bytes;
        if (Text is not null) return Encoding.UTF8.GetBytes(Text);
        if (Head is not { Length: > 0 }) return null;
        var seed = Head[0];
        var pattern = new byte[Length];
        for (long i = 0; i < Length; i++) pattern[i] = (byte)((i * 7 + seed) % 251);
        if (Matches(pattern)) return pattern;
        var fill = new byte[Length];
        Array.Fill(fill, seed);
        return Matches(fill) ? fill : null;
    }

    public bool Matches(byte[] actual) =>
        actual.LongLength == Length && Convert.ToHexStringLower(SHA256.HashData(actual)) == Sha256;
}
