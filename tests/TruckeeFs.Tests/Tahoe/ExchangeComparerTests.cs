using System.Text;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>The contract comparison itself must catch wrong answers, or the contract test could not fail.</summary>
public sealed class ExchangeComparerTests
{
    private static readonly IReadOnlyList<KeyValuePair<string, string>> TextPlain = [new("Content-Type", "text/plain"), new("Content-Length", "24")];

    [Fact]
    public void A_faithful_response_has_no_differences()
    {
        var exchange = Named("get_sdmf_after_overwrite");
        var response = new RawResponse(200, [new("Content-Type", "text/plain"), new("Accept-Ranges", "bytes"), new("Content-Length", "24")], Encoding.UTF8.GetBytes("sdmf version 2 (longer)\n"));
        Assert.Empty(Compare(exchange, response));
    }

    [Fact]
    public void Wrong_status_headers_and_bytes_are_reported()
    {
        var exchange = Named("get_sdmf_after_overwrite");
        var response = new RawResponse(206, [new("Content-Type", "text/html"), new("Content-Length", "24")], Encoding.UTF8.GetBytes("sdmf version 2 (LONGER)\n"));
        var problems = Compare(exchange, response);
        Assert.Contains(problems, p => p.StartsWith("status", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Content-Type", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Accept-Ranges", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("body", StringComparison.Ordinal));
    }

    [Fact]
    public void A_wrong_literal_cap_is_reported()
    {
        var exchange = Named("put_uri_lit_10_bytes");
        var response = new RawResponse(200, [new("Transfer-Encoding", "chunked"), new("Content-Type", "text/html")], Encoding.UTF8.GetBytes("URI:LIT:gaytemzugu3doobq"));
        Assert.Single(Compare(exchange, response));
    }

    [Fact]
    public void Json_with_a_missing_key_or_a_wrong_size_is_reported()
    {
        var exchange = Named("json_file_lit_10");
        var body = "[\"filenode\", {\"mutable\": false, \"format\": \"CHK\", \"size\": 11}]";
        var problems = Compare(exchange, new RawResponse(200, TextPlain, Encoding.UTF8.GetBytes(body)));
        Assert.Contains(problems, p => p.Contains("keys differ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("size", StringComparison.Ordinal));
    }

    [Fact]
    public void A_cap_that_changes_meaning_between_exchanges_is_reported()
    {
        var mapper = new CapMapper();
        const string recorded = "URI:CHK:2juyz5qdy32bahgkc7epouh2d4:rruym6zcgl6m4gyxthlf2jjsfl5gdoi2vj6wnqaesaltdbf5kzra:1:3:76";
        Assert.Null(mapper.LearnCap(recorded, "URI:CHK:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:1:3:76"));
        Assert.NotNull(mapper.LearnCap(recorded, "URI:CHK:cccccccccccccccccccccccccc:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:1:3:76"));
        Assert.NotNull(mapper.LearnCap(recorded, "URI:CHK:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:1:3:77"));
        Assert.Equal("/uri/URI:CHK:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:1:3:76?t=json", mapper.ToActual("/uri/" + recorded + "?t=json"));
    }

    private static RecordedExchange Named(string name) => Recordings.Exchanges.Single(e => e.Name == name);

    private static IReadOnlyList<string> Compare(RecordedExchange exchange, RawResponse response) =>
        new ExchangeComparer(new CapMapper(), "http://127.0.0.1:3456", "http://127.0.0.1:1").Compare(exchange, response, RecordingReplay.StrictnessOf(exchange));
}
