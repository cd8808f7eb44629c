using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace TruckeeFs.Testing.Tahoe;

/// <summary>A request as the gateway sees it: the raw target split and decoded as Twisted does.</summary>
internal sealed class GatewayRequest
{
    public required string Method { get; init; }
    public required string Path { get; init; }
    public required List<KeyValuePair<string, string>> Query { get; init; }
    public required IHeaderDictionary Headers { get; init; }
    public required byte[] Body { get; init; }
    public required string Host { get; init; }

    /// <summary>The first value of a query argument, or null.</summary>
    public string? Arg(string name) => Query.FirstOrDefault(q => q.Key == name).Value;

    public bool HasArg(string name) => Query.Any(q => q.Key == name);

    /// <summary>The <c>t=</c> argument, stripped, as Tahoe reads it.</summary>
    public string T => (Arg("t") ?? "").Trim();

    public string? Header(string name) => Headers.TryGetValue(name, out var v) && v.Count > 0 ? v[0] : null;

    /// <summary>Tahoe answers unexpected exceptions as plain text only when the client asks for it.</summary>
    public bool AcceptsPlainText => Header("Accept")?.Contains("text/plain", StringComparison.OrdinalIgnoreCase) == true;

    public static List<KeyValuePair<string, string>> ParseQuery(string query)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? "" : part[(eq + 1)..];
            result.Add(new(PercentDecode(name.Replace('+', ' ')) ?? name, PercentDecode(value.Replace('+', ' ')) ?? value));
        }
        return result;
    }

    /// <summary>Percent-decodes to UTF-8; null when the bytes are not valid UTF-8.</summary>
    public static string? PercentDecode(string text)
    {
        if (!text.Contains('%', StringComparison.Ordinal)) return text;
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '%' && i + 2 < text.Length && byte.TryParse(text.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString([.. bytes]);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }
}

/// <summary>A response the gateway has decided on, written by <see cref="TahoeTestGateway"/>.</summary>
internal sealed class GatewayResponse
{
    public int Status { get; set; } = 200;
    public List<KeyValuePair<string, string>> Headers { get; } = [];
    public byte[] Body { get; set; } = [];

    /// <summary>Sent without Content-Length (chunked), as Twisted streams rendered results.</summary>
    public bool Chunked { get; set; }

    /// <summary>The Content-Length a HEAD answer reports, for the body it does not send.</summary>
    public long? HeadLength { get; set; }

    public GatewayRequestKind Kind { get; set; } = GatewayRequestKind.Other;

    public GatewayResponse Header(string name, string value)
    {
        Headers.RemoveAll(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase));
        Headers.Add(new(name, value));
        return this;
    }

    /// <summary>A short plain-text answer, like Tahoe's render-time errors and t=uri.</summary>
    public static GatewayResponse Text(int status, string text, string contentType = "text/plain;charset=utf-8") =>
        new GatewayResponse { Status = status, Body = Encoding.UTF8.GetBytes(text) }.Header("Content-Type", contentType);

    /// <summary>A rendered result streamed as text/html, as Tahoe sends caps from uploads and mkdirs.</summary>
    public static GatewayResponse Streamed(string text, int status = 200, string contentType = "text/html") =>
        new GatewayResponse { Status = status, Body = Encoding.UTF8.GetBytes(text), Chunked = true }.Header("Content-Type", contentType);

    /// <summary>Twisted's redirect page.</summary>
    public static GatewayResponse Redirect(int status, string location, bool chunked)
    {
        var page = $"\n<html>\n    <head>\n        <meta http-equiv=\"refresh\" content=\"0;URL={location}\">\n    </head>\n    <body bgcolor=\"#FFFFFF\" text=\"#000000\">\n    <a href=\"{location}\">click here</a>\n    </body>\n</html>\n";
        var response = Text(status, page, "text/html; charset=utf-8");
        response.Chunked = chunked;
        return response.Header("Location", location);
    }

    /// <summary>A minimal HTML page: the gateway keeps only the title real Tahoe pages carry.</summary>
    public static GatewayResponse Page(string title, string body) =>
        Streamed($"<!DOCTYPE html>\n<html>\n  <head>\n    <title>{System.Net.WebUtility.HtmlEncode(title)}</title>\n  </head>\n  <body>\n{body}\n  </body>\n</html>\n");
}

/// <summary>
/// An error answer. Tahoe has three styles, and clients see all three: plain text from render
/// methods, a small HTML page from path traversal, and a traceback (HTML, or plain text when the
/// request accepts text/plain) for unexpected exceptions.
/// </summary>
internal sealed class TahoeWebException(GatewayResponse response, string message) : Exception(message)
{
    public const string NotWriteable = "allmydata.mutable.common.NotWriteableError";
    public const string AssertionError = "builtins.AssertionError";

    public const string UnrecoverableMessage =
        "UnrecoverableFileError: the directory (or mutable file) could not be retrieved, because there were insufficient good shares. This might indicate that no servers were connected, insufficient servers were connected, the URI was corrupt, or that shares have been lost due to server departure, hard drive failure, or disk corruption. You should perform a filecheck on this object to learn more.";

    public const string NoSharesMessage =
        "NoSharesError: no shares could be found. Zero shares usually indicates a corrupt URI, or that no servers were connected, but it might also indicate severe corruption. You should perform a filecheck on this object to learn more.\n\nThe full error message is:\nno shares (need 1). Last failure: None";

    public const string ExistingChildMessage = "There was already a child by that name, and you asked me to not replace it.";

    public GatewayResponse Response { get; } = response;

    public static TahoeWebException Text(int status, string message) => new(GatewayResponse.Text(status, message), message);

    public static TahoeWebException Html(int status, string title, string detail)
    {
        var page = $"\n<html>\n  <head><title>{status} - {title}</title></head>\n  <body>\n    <h1>{title}</h1>\n    <p>{detail}</p>\n  </body>\n</html>\n";
        return new(GatewayResponse.Text(status, page, "text/html; charset=utf-8"), $"{title}: {detail}");
    }

    public static TahoeWebException NoSuchChildHtml(string name) => Html(404, "Error", $"No such child: {name}");

    public static TahoeWebException Traceback(GatewayRequest request, string exceptionType, string message = "")
    {
        var line = $"{exceptionType}: {message}";
        if (request.AcceptsPlainText)
            return new(GatewayResponse.Text(500, $"Traceback (most recent call last):\nFailure: {line}\n"), line);
        var page = $"<html><head><title>500 - Internal Server Error</title></head><body><h1>Internal Server Error</h1><pre>Traceback (most recent call last):\n{System.Net.WebUtility.HtmlEncode(line)}\n</pre></body></html>\n";
        return new(GatewayResponse.Streamed(page, 500), line);
    }

    public static TahoeWebException Existing() => Text(409, ExistingChildMessage);
}
