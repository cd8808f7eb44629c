using System.Text.Json;

namespace TruckeeFs.Content.Tahoe;

/// <summary>What a directory's <c>t=json</c> says: its caps and its children.</summary>
/// <param name="WriteCap">The directory's write cap; null when listed through a read-only cap.</param>
/// <param name="ReadCap">The directory's read-only cap.</param>
/// <param name="Mutable">False for deep-immutable directories.</param>
/// <param name="Children">Children by name (Tahoe stores names in Unicode NFC).</param>
public sealed record TahoeDirectoryListing(string? WriteCap, string ReadCap, bool Mutable, IReadOnlyDictionary<string, TahoeDirectoryEntry> Children)
{
    /// <summary>Parses a <c>["dirnode", {…}]</c> document.</summary>
    public static TahoeDirectoryListing Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root[0].GetString() != "dirnode") throw new FormatException($"expected a dirnode, got {root[0]}");
        var info = root[1];
        var children = new Dictionary<string, TahoeDirectoryEntry>(StringComparer.Ordinal);
        foreach (var child in info.GetProperty("children").EnumerateObject())
            children[child.Name] = TahoeDirectoryEntry.Parse(child.Value);
        return new TahoeDirectoryListing(
            info.TryGetProperty("rw_uri", out var rw) ? rw.GetString() : null,
            info.GetProperty("ro_uri").GetString()!,
            info.GetProperty("mutable").GetBoolean(),
            children);
    }
}

/// <summary>What a listing says of one child.</summary>
/// <param name="Kind">File, directory, or a cap kind this gateway does not know.</param>
/// <param name="WriteCap">Write cap, for mutable children seen through a writable parent.</param>
/// <param name="ReadCap">Read cap.</param>
/// <param name="Mutable">True for SDMF/MDMF files and mutable directories.</param>
/// <param name="Size">Size of immutable files; null for mutable ones (Tahoe lists none) and directories.</param>
/// <param name="Metadata">The link's metadata object (user keys, and Tahoe's <c>tahoe</c> link times).</param>
public sealed record TahoeDirectoryEntry(TahoeNodeKind Kind, string? WriteCap, string? ReadCap, bool Mutable, long? Size, JsonElement Metadata)
{
    /// <summary>The cap to use for this child: the write cap when there is one.</summary>
    public string? Cap => WriteCap ?? ReadCap;

    internal static TahoeDirectoryEntry Parse(JsonElement pair)
    {
        var kind = pair[0].GetString() switch
        {
            "filenode" => TahoeNodeKind.File,
            "dirnode" => TahoeNodeKind.Directory,
            _ => TahoeNodeKind.Unknown,
        };
        var info = pair[1];
        return new TahoeDirectoryEntry(
            kind,
            info.TryGetProperty("rw_uri", out var rw) ? rw.GetString() : null,
            info.TryGetProperty("ro_uri", out var ro) ? ro.GetString() : null,
            info.TryGetProperty("mutable", out var mutable) && mutable.GetBoolean(),
            info.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.Number ? size.GetInt64() : null,
            info.TryGetProperty("metadata", out var metadata) ? metadata.Clone() : default);
    }
}

/// <summary>The kinds of node a directory can hold.</summary>
public enum TahoeNodeKind
{
    /// <summary>An immutable or mutable file.</summary>
    File,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A cap of a kind the gateway does not know (from a newer Tahoe).</summary>
    Unknown,
}
