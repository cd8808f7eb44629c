using System.Text.RegularExpressions;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// Translates between the caps of the recorded grid and those of the gateway under test. Keys
/// and hashes differ (random write keys, another convergence secret), so the mapper learns, from
/// each response, which recorded base32 field stands for which actual one, and derives the read
/// keys and storage indexes that follow from a learned key with Tahoe's own hashes (a request may
/// use a read cap before any response showed it). The mapping must stay a bijection: a recorded
/// field that later pairs with a different actual field is a contract failure, which is how
/// convergence and cap stability are checked. Literal caps hold data, not keys, so they must be
/// equal outright.
/// </summary>
internal sealed partial class CapMapper
{
    private static readonly HashSet<string> MutableWriteTypes = ["SSK", "MDMF", "DIR2", "DIR2-MDMF"];
    private static readonly HashSet<string> MutableReadTypes = ["SSK-RO", "MDMF-RO", "DIR2-RO", "DIR2-MDMF-RO"];
    private readonly Dictionary<string, string> _toActual = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _toRecorded = new(StringComparer.Ordinal);

    /// <summary>Rewrites recorded text (a target, a body, a header) into the gateway's caps.</summary>
    public string ToActual(string recorded) => Token().Replace(recorded, m => _toActual.GetValueOrDefault(m.Value, m.Value));

    public bool Knows(string recordedToken) => _toActual.ContainsKey(recordedToken);

    /// <summary>Pairs a recorded cap with the gateway's cap in the same place; returns a mismatch description or null.</summary>
    public string? LearnCap(string recorded, string actual)
    {
        var r = recorded.Split(':');
        var a = actual.Split(':');
        if (r.Length < 2 || r[0] != "URI" || r[1] is "LIT" or "DIR2-LIT")
            return recorded == actual ? null : $"expected cap {recorded}, got {actual}";
        if (a.Length != r.Length || a[0] != r[0] || a[1] != r[1])
            return $"expected a cap like {recorded}, got {actual}";
        for (var i = 2; i < r.Length; i++)
        {
            if (!Token().IsMatch(r[i]) || r[i].Length is not (26 or 52))
            {
                if (r[i] != a[i]) return $"cap field {i} differs: expected {recorded}, got {actual}";
                continue;
            }
            if (Learn(r[i], a[i]) is { } problem) return problem;
        }
        return LearnDerived(r, a);
    }

    /// <summary>Pairs the storage indexes inside two ETags (<c>SI-</c>, <c>SI-json</c>, <c>DIR:SI-json</c>).</summary>
    public string? LearnEtag(string recorded, string actual)
    {
        var r = Token().Matches(recorded).Select(m => m.Value).ToList();
        var a = Token().Matches(actual).Select(m => m.Value).ToList();
        if (r.Count != a.Count) return $"ETag {actual} does not have the shape of {recorded}";
        for (var i = 0; i < r.Count; i++)
            if (Learn(r[i], a[i]) is { } problem) return problem;
        return ToActual(recorded) == actual ? null : $"ETag: expected {ToActual(recorded)}, got {actual}";
    }

    private string? LearnDerived(string[] r, string[] a)
    {
        if (!TahoeCaps.TryDecodeBase32(r[2], out var recordedKey) || !TahoeCaps.TryDecodeBase32(a[2], out var actualKey)) return null;
        const string readKeyTag = "allmydata_mutable_writekey_to_readkey_v1";
        const string mutableIndexTag = "allmydata_mutable_readkey_to_storage_index_v1";
        if (r[1] is "CHK" or "DIR2-CHK")
            return LearnHash("allmydata_immutable_key_to_storage_index_v1", recordedKey, actualKey);
        if (MutableWriteTypes.Contains(r[1]))
        {
            var recordedRead = TahoeCapability.TaggedHash(readKeyTag, recordedKey, 16);
            var actualRead = TahoeCapability.TaggedHash(readKeyTag, actualKey, 16);
            return Learn(TahoeCaps.EncodeBase32(recordedRead), TahoeCaps.EncodeBase32(actualRead))
                ?? LearnHash(mutableIndexTag, recordedRead, actualRead);
        }
        return MutableReadTypes.Contains(r[1]) ? LearnHash(mutableIndexTag, recordedKey, actualKey) : null;
    }

    private string? LearnHash(string tag, byte[] recorded, byte[] actual) =>
        Learn(TahoeCaps.EncodeBase32(TahoeCapability.TaggedHash(tag, recorded, 16)), TahoeCaps.EncodeBase32(TahoeCapability.TaggedHash(tag, actual, 16)));

    private string? Learn(string recorded, string actual)
    {
        if (_toActual.TryGetValue(recorded, out var known))
            return known == actual ? null : $"recorded {recorded} already stands for {known}, now for {actual}";
        if (_toRecorded.TryGetValue(actual, out var knownRecorded))
            return $"actual {actual} already stands for recorded {knownRecorded}, now for {recorded}";
        _toActual[recorded] = actual;
        _toRecorded[actual] = recorded;
        return null;
    }

    [GeneratedRegex("[a-z2-7]{26,}")]
    private static partial Regex Token();
}
