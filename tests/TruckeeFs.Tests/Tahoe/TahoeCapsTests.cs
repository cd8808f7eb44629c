using System.Text.Json;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// Cap arithmetic checked against the real gateway's recordings, independently of the test
/// gateway: literal caps computed locally, and read caps, verify caps and storage indexes
/// derived from keys with Tahoe's hashes.
/// </summary>
public sealed class TahoeCapsTests
{
    [Fact]
    public void Literal_caps_match_every_recorded_upload()
    {
        var checkedCount = 0;
        foreach (var exchange in Recordings.Exchanges.Where(e => e.Method == "PUT" && !e.Target.Contains("t=uri", StringComparison.Ordinal) && e.ResponseBody.Text?.StartsWith("URI:LIT:", StringComparison.Ordinal) == true))
        {
            var body = exchange.RequestBody!.TryReconstruct()!;
            Assert.Equal(exchange.ResponseBody.Text, TahoeCaps.LiteralCap(body));
            Assert.True(TahoeCaps.TryDecodeLiteral(exchange.ResponseBody.Text!, out var decoded));
            Assert.Equal(body, decoded);
            checkedCount++;
        }
        Assert.True(checkedCount >= 35, $"only {checkedCount} literal uploads found");
    }

    [Fact]
    public void Literal_caps_stop_at_55_bytes()
    {
        Assert.Equal("URI:LIT:", TahoeCaps.LiteralCap([]));
        Assert.Throws<ArgumentException>(() => TahoeCaps.LiteralCap(new byte[56]));
    }

    [Theory]
    [InlineData("a")]
    [InlineData("abc1")]
    [InlineData("ABCD")]
    [InlineData("gb")]
    public void Malformed_base32_is_refused(string text)
    {
        Assert.False(TahoeCaps.TryDecodeBase32(text, out _));
    }

    [Fact]
    public void Base32_round_trips_every_length()
    {
        var random = new Random(1);
        for (var length = 0; length < 64; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.True(TahoeCaps.TryDecodeBase32(TahoeCaps.EncodeBase32(data), out var back));
            Assert.Equal(data, back);
        }
    }

    [Fact]
    public void Chk_sizes_are_read_from_the_cap()
    {
        Assert.True(TahoeCaps.TryGetChkSize("URI:CHK:trq3cbpvtun2darz36ivv24n2a:thkqroqnu4na5wpreehzroslmwv4mci7zljvyijy26h4bhhr44wa:1:3:1048576", out var size));
        Assert.Equal(1048576, size);
        Assert.False(TahoeCaps.TryGetChkSize("URI:CHK:garbage", out _));
        Assert.False(TahoeCaps.TryGetChkSize("URI:LIT:", out _));
    }

    [Fact]
    public void Derived_caps_match_every_recorded_json_description()
    {
        var checkedCount = 0;
        foreach (var exchange in Recordings.Exchanges.Where(e => e.Target.Contains("t=json", StringComparison.Ordinal) && e.Status == 200 && e.ResponseBody.Text is not null))
        {
            using var document = JsonDocument.Parse(exchange.ResponseBody.Text!);
            if (document.RootElement.ValueKind != JsonValueKind.Array) continue;
            foreach (var node in Nodes(document.RootElement))
            {
                var source = node.TryGetProperty("rw_uri", out var rw) ? rw.GetString()! : node.GetProperty("ro_uri").GetString()!;
                if (TahoeCapability.Parse(source) is not { } cap) continue;
                Assert.Equal(source, cap.ToString());
                Assert.Equal(node.GetProperty("ro_uri").GetString(), cap.ReadOnly().ToString());
                if (node.TryGetProperty("verify_uri", out var verify)) Assert.Equal(verify.GetString(), cap.Verifier()!.ToString());
                else Assert.Null(cap.Verifier());
                checkedCount++;
            }
        }
        Assert.True(checkedCount >= 100, $"only {checkedCount} nodes checked");
    }

    [Fact]
    public void Storage_indexes_match_recorded_etags()
    {
        var checkedCount = 0;
        foreach (var exchange in Recordings.Exchanges.Where(e => e.ResponseHeader("ETag") is not null && e.Target.StartsWith("/uri/URI:CHK:", StringComparison.Ordinal)))
        {
            var capText = exchange.Target[5..].Split('?', '/')[0];
            var cap = TahoeCapability.Parse(capText)!;
            Assert.StartsWith(cap.StorageIndexText + "-", exchange.ResponseHeader("ETag"), StringComparison.Ordinal);
            checkedCount++;
        }
        Assert.True(checkedCount >= 30, $"only {checkedCount} ETags checked");
    }

    private static IEnumerable<JsonElement> Nodes(JsonElement pair)
    {
        var info = pair[1];
        if (info.TryGetProperty("ro_uri", out _)) yield return info;
        if (info.TryGetProperty("children", out var children))
            foreach (var child in children.EnumerateObject())
                foreach (var node in Nodes(child.Value))
                    yield return node;
    }
}
