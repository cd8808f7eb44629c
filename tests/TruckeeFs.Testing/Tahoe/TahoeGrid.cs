using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TruckeeFs.Content.Tahoe;

namespace TruckeeFs.Testing.Tahoe;

/// <summary>
/// The storage behind the test gateway, in memory: immutable objects by storage index with a
/// share-present flag per simulated storage server, and mutable slots holding file contents or
/// a directory's links. Not thread-safe: the gateway holds <see cref="Sync"/> around each
/// request, as one real gateway serializes its operations on a node.
/// </summary>
internal sealed class TahoeGrid
{
    public const int ShareCount = 3;
    public static readonly string[] ServerNicknames = ["storage1", "storage2", "storage3"];

    private readonly byte[] _convergenceSecret = RandomNumberGenerator.GetBytes(32);
    private readonly Dictionary<string, ImmutableObject> _immutable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MutableSlot> _mutable = new(StringComparer.Ordinal);

    public Lock Sync { get; } = new();

    public static IReadOnlyList<string> ServerIds { get; } = [.. ServerNicknames.Select(n =>
        "v0-" + TahoeCaps.EncodeBase32(SHA256.HashData(Encoding.UTF8.GetBytes("truckeefs test storage server " + n))))];

    public long FilesUploaded { get; private set; }
    public long BytesUploaded { get; private set; }
    public long FilesDownloaded { get; set; }
    public long BytesDownloaded { get; set; }
    public long MutablePublished { get; private set; }
    public long MutableBytesPublished { get; private set; }

    /// <summary>
    /// Stores immutable data: a literal cap when small enough, else a convergent CHK cap (the same
    /// bytes give the same cap for this grid's lifetime, as with one node's convergence secret).
    /// </summary>
    public TahoeCapability StoreImmutable(byte[] data, bool isDirectory = false)
    {
        if (data.Length <= TahoeCaps.MaxLiteralSize) return TahoeCapability.NewLiteral(data, isDirectory);
        var digest = SHA256.HashData(data);
        var key = TahoeCapability.TaggedHash("truckeefs_test_gateway_convergent_key_v1", [.. _convergenceSecret, .. digest], 16);
        var ueb = TahoeCapability.TaggedHash("truckeefs_test_gateway_ueb_v1", [.. key, .. digest], 32);
        var cap = TahoeCapability.NewChk(key, ueb, data.Length, isDirectory);
        var si = cap.StorageIndexText;
        if (!_immutable.TryGetValue(si, out var stored) || stored.SharesPresent == 0)
            _immutable[si] = new ImmutableObject(data);
        FilesUploaded++;
        BytesUploaded += data.Length;
        return cap;
    }

    /// <summary>Reads an immutable object; null when no share of it can be found.</summary>
    public byte[]? ReadImmutable(TahoeCapability cap)
    {
        if (cap.Format == CapFormat.Literal) return cap.Key;
        return _immutable.TryGetValue(cap.StorageIndexText, out var stored) && stored.SharesPresent > 0 ? stored.Data : null;
    }

    public ImmutableObject? FindImmutable(TahoeCapability cap) =>
        _immutable.TryGetValue(cap.StorageIndexText, out var stored) ? stored : null;

    public TahoeCapability CreateMutableFile(CapFormat format, byte[] contents)
    {
        var cap = TahoeCapability.NewMutable(format, isDirectory: false);
        _mutable[cap.StorageIndexText] = new MutableSlot { Contents = contents };
        Published(contents.Length);
        return cap;
    }

    public TahoeCapability CreateDirectory(CapFormat format, Dictionary<string, DirectoryEntry>? children = null)
    {
        var cap = TahoeCapability.NewMutable(format, isDirectory: true);
        _mutable[cap.StorageIndexText] = new MutableSlot { Children = children ?? new(StringComparer.Ordinal) };
        Published(0);
        return cap;
    }

    /// <summary>The mutable slot a cap names; null when the grid holds no shares for it.</summary>
    public MutableSlot? FindMutable(TahoeCapability cap) =>
        cap.IsMutable && _mutable.TryGetValue(cap.StorageIndexText, out var slot) ? slot : null;

    public void Published(long bytes)
    {
        MutablePublished++;
        MutableBytesPublished += bytes;
    }

    /// <summary>Removes the shares of an immutable object from all but <paramref name="keep"/> servers.</summary>
    public void DeleteShares(TahoeCapability cap, int keep)
    {
        if (FindImmutable(cap) is not { } stored)
            throw new ArgumentException($"the grid holds no immutable object for {cap}", nameof(cap));
        for (var i = keep; i < ShareCount; i++) stored.Shares[i] = false;
    }
}

/// <summary>An immutable object and which simulated servers still hold a share of it.</summary>
internal sealed class ImmutableObject(byte[] data)
{
    public byte[] Data { get; } = data;
    public bool[] Shares { get; } = [true, true, true];
    public int SharesPresent => Shares.Count(s => s);
}

/// <summary>A mutable file's contents or a mutable directory's links, plus its version number.</summary>
internal sealed class MutableSlot
{
    public byte[] Contents { get; set; } = [];
    public Dictionary<string, DirectoryEntry>? Children { get; init; }
    public int Sequence { get; set; } = 1;
}

/// <summary>
/// One link in a directory: the child's caps and the link's metadata. User metadata keys are
/// kept as given; Tahoe's own link times are null for links made by mkdir-with-children or
/// mkdir-immutable, which Tahoe stores without a <c>tahoe</c> key.
/// </summary>
internal sealed class DirectoryEntry
{
    public string? WriteCap { get; set; }
    public required string ReadCap { get; set; }
    public JsonObject User { get; set; } = [];
    public double? LinkCreated { get; set; }
    public double? LinkModified { get; set; }

    public TahoeCapability? Cap => TahoeCapability.Parse(WriteCap ?? ReadCap);

    public JsonObject Metadata()
    {
        var metadata = (JsonObject)User.DeepClone();
        if (LinkCreated is { } created && LinkModified is { } modified)
            metadata["tahoe"] = new JsonObject { ["linkcrtime"] = created, ["linkmotime"] = modified };
        return metadata;
    }
}
