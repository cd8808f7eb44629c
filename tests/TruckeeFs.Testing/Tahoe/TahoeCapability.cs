using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using TruckeeFs.Content.Tahoe;

namespace TruckeeFs.Testing.Tahoe;

/// <summary>How a cap's object is stored: inside the cap, immutable erasure-coded, or mutable.</summary>
public enum CapFormat
{
    /// <summary>Data inside the cap (<c>URI:LIT:</c>, <c>URI:DIR2-LIT:</c>).</summary>
    Literal,
    /// <summary>Immutable, content-hash keyed (<c>URI:CHK:</c>, <c>URI:DIR2-CHK:</c>).</summary>
    Chk,
    /// <summary>Small mutable (<c>URI:SSK:</c>, <c>URI:DIR2:</c>).</summary>
    Sdmf,
    /// <summary>Medium mutable (<c>URI:MDMF:</c>, <c>URI:DIR2-MDMF:</c>).</summary>
    Mdmf,
}

/// <summary>The authority a cap grants.</summary>
public enum CapAccess
{
    /// <summary>Read and write.</summary>
    Write,
    /// <summary>Read only.</summary>
    Read,
    /// <summary>Check integrity only.</summary>
    Verify,
}

/// <summary>
/// A parsed Tahoe-LAFS cap of a kind the test gateway knows, with the derivations a real
/// gateway performs: read caps from write caps and storage indexes from keys, using Tahoe's
/// tagged double-SHA-256 hashes, so derived caps and ETags match a real grid's for the same
/// keys. Strings that do not parse are unknown caps, which is also how Tahoe treats them.
/// </summary>
public sealed class TahoeCapability
{
    private const string ImmutableStorageIndexTag = "allmydata_immutable_key_to_storage_index_v1";
    private const string MutableReadKeyTag = "allmydata_mutable_writekey_to_readkey_v1";
    private const string MutableStorageIndexTag = "allmydata_mutable_readkey_to_storage_index_v1";

    private TahoeCapability(CapFormat format, bool isDirectory, CapAccess access, byte[] key, byte[] hash, int needed, int total, long size)
    {
        Format = format;
        IsDirectory = isDirectory;
        Access = access;
        Key = key;
        Hash = hash;
        Needed = needed;
        Total = total;
        Size = size;
    }

    /// <summary>Where the object lives.</summary>
    public CapFormat Format { get; }

    /// <summary>True for directory caps.</summary>
    public bool IsDirectory { get; }

    /// <summary>What the cap allows.</summary>
    public CapAccess Access { get; }

    /// <summary>
    /// The first field: the data of a literal cap, the read key of a CHK cap, the write key or
    /// read key of a mutable cap, the storage index of a verify cap.
    /// </summary>
    public byte[] Key { get; }

    /// <summary>The UEB hash of a CHK cap or the public-key fingerprint of a mutable cap.</summary>
    public byte[] Hash { get; }

    /// <summary>Shares needed to read (k) of a CHK cap.</summary>
    public int Needed { get; }

    /// <summary>Shares written (N) of a CHK cap.</summary>
    public int Total { get; }

    /// <summary>Size of a CHK or literal object (known from the cap alone).</summary>
    public long Size { get; }

    /// <summary>True for SDMF and MDMF objects.</summary>
    public bool IsMutable => Format is CapFormat.Sdmf or CapFormat.Mdmf;

    /// <summary>The storage index naming the object's shares; empty for literal caps.</summary>
    public byte[] StorageIndex => Access == CapAccess.Verify ? Key
        : Format switch
        {
            CapFormat.Literal => [],
            CapFormat.Chk => TaggedHash(ImmutableStorageIndexTag, Key, 16),
            _ => TaggedHash(MutableStorageIndexTag, ReadKey, 16),
        };

    /// <summary>Base32 form of <see cref="StorageIndex"/>, as ETags and check results show it.</summary>
    public string StorageIndexText => TahoeCaps.EncodeBase32(StorageIndex);

    private byte[] ReadKey => Access == CapAccess.Write ? TaggedHash(MutableReadKeyTag, Key, 16) : Key;

    /// <summary>Parses a cap; null when it is malformed or of a kind this gateway does not know.</summary>
    public static TahoeCapability? Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length < 3 || parts[0] != "URI") return null;
        return parts[1] switch
        {
            "LIT" => Literal(parts, isDirectory: false),
            "DIR2-LIT" => Literal(parts, isDirectory: true),
            "CHK" => Chk(parts, isDirectory: false, CapAccess.Read),
            "CHK-Verifier" => Chk(parts, isDirectory: false, CapAccess.Verify),
            "DIR2-CHK" => Chk(parts, isDirectory: true, CapAccess.Read),
            "DIR2-CHK-Verifier" => Chk(parts, isDirectory: true, CapAccess.Verify),
            "SSK" => Mutable(parts, CapFormat.Sdmf, false, CapAccess.Write),
            "SSK-RO" => Mutable(parts, CapFormat.Sdmf, false, CapAccess.Read),
            "SSK-Verifier" => Mutable(parts, CapFormat.Sdmf, false, CapAccess.Verify),
            "MDMF" => Mutable(parts, CapFormat.Mdmf, false, CapAccess.Write),
            "MDMF-RO" => Mutable(parts, CapFormat.Mdmf, false, CapAccess.Read),
            "MDMF-Verifier" => Mutable(parts, CapFormat.Mdmf, false, CapAccess.Verify),
            "DIR2" => Mutable(parts, CapFormat.Sdmf, true, CapAccess.Write),
            "DIR2-RO" => Mutable(parts, CapFormat.Sdmf, true, CapAccess.Read),
            "DIR2-Verifier" => Mutable(parts, CapFormat.Sdmf, true, CapAccess.Verify),
            "DIR2-MDMF" => Mutable(parts, CapFormat.Mdmf, true, CapAccess.Write),
            "DIR2-MDMF-RO" => Mutable(parts, CapFormat.Mdmf, true, CapAccess.Read),
            "DIR2-MDMF-Verifier" => Mutable(parts, CapFormat.Mdmf, true, CapAccess.Verify),
            _ => null,
        };
    }

    /// <summary>A CHK cap (k=1, N=3, like the recorded grid) for an object of <paramref name="size"/> bytes.</summary>
    public static TahoeCapability NewChk(byte[] key, byte[] uebHash, long size, bool isDirectory = false) =>
        new(CapFormat.Chk, isDirectory, CapAccess.Read, key, uebHash, 1, 3, size);

    /// <summary>A literal cap carrying <paramref name="data"/>.</summary>
    public static TahoeCapability NewLiteral(byte[] data, bool isDirectory = false) =>
        new(CapFormat.Literal, isDirectory, CapAccess.Read, data, [], 0, 0, data.Length);

    /// <summary>A fresh mutable write cap with a random write key and fingerprint.</summary>
    public static TahoeCapability NewMutable(CapFormat format, bool isDirectory) =>
        new(format, isDirectory, CapAccess.Write, RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(32), 0, 0, 0);

    /// <summary>The read-only form (itself when already read-only).</summary>
    public TahoeCapability ReadOnly() => Access == CapAccess.Write
        ? new(Format, IsDirectory, CapAccess.Read, ReadKey, Hash, Needed, Total, Size)
        : this;

    /// <summary>The verify cap, or null for literal caps, which need no verifying.</summary>
    public TahoeCapability? Verifier() => Format == CapFormat.Literal
        ? null
        : new(Format, IsDirectory, CapAccess.Verify, StorageIndex, Hash, Needed, Total, Size);

    /// <summary>The cap string.</summary>
    public override string ToString()
    {
        var type = TypeName();
        return Format switch
        {
            CapFormat.Literal => $"URI:{type}:{TahoeCaps.EncodeBase32(Key)}",
            CapFormat.Chk => string.Create(CultureInfo.InvariantCulture, $"URI:{type}:{TahoeCaps.EncodeBase32(Key)}:{TahoeCaps.EncodeBase32(Hash)}:{Needed}:{Total}:{Size}"),
            _ => $"URI:{type}:{TahoeCaps.EncodeBase32(Key)}:{TahoeCaps.EncodeBase32(Hash)}",
        };
    }

    /// <summary>Tahoe's tagged hash: SHA-256 of SHA-256 of netstring(tag) + value, truncated.</summary>
    public static byte[] TaggedHash(string tag, ReadOnlySpan<byte> value, int length)
    {
        var tagBytes = Encoding.ASCII.GetBytes(tag);
        var prefix = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{tagBytes.Length}:"));
        var input = new byte[prefix.Length + tagBytes.Length + 1 + value.Length];
        prefix.CopyTo(input, 0);
        tagBytes.CopyTo(input, prefix.Length);
        input[prefix.Length + tagBytes.Length] = (byte)',';
        value.CopyTo(input.AsSpan(prefix.Length + tagBytes.Length + 1));
        return SHA256.HashData(SHA256.HashData(input))[..length];
    }

    private string TypeName()
    {
        var suffix = Access switch { CapAccess.Read => "-RO", CapAccess.Verify => "-Verifier", _ => "" };
        return (Format, IsDirectory) switch
        {
            (CapFormat.Literal, false) => "LIT",
            (CapFormat.Literal, true) => "DIR2-LIT",
            (CapFormat.Chk, false) => Access == CapAccess.Verify ? "CHK-Verifier" : "CHK",
            (CapFormat.Chk, true) => Access == CapAccess.Verify ? "DIR2-CHK-Verifier" : "DIR2-CHK",
            (CapFormat.Sdmf, false) => "SSK" + suffix,
            (CapFormat.Mdmf, false) => "MDMF" + suffix,
            (CapFormat.Sdmf, true) => "DIR2" + suffix,
            _ => "DIR2-MDMF" + suffix,
        };
    }

    private static TahoeCapability? Literal(string[] parts, bool isDirectory)
    {
        if (parts.Length != 3 || !TahoeCaps.TryDecodeBase32(parts[2], out var data)) return null;
        return NewLiteral(data, isDirectory);
    }

    private static TahoeCapability? Chk(string[] parts, bool isDirectory, CapAccess access)
    {
        if (parts.Length != 7
            || !TryKey(parts[2], 16, out var key) || !TryKey(parts[3], 32, out var hash)
            || !int.TryParse(parts[4], NumberStyles.None, CultureInfo.InvariantCulture, out var needed)
            || !int.TryParse(parts[5], NumberStyles.None, CultureInfo.InvariantCulture, out var total)
            || !long.TryParse(parts[6], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
            return null;
        return new(CapFormat.Chk, isDirectory, access, key, hash, needed, total, size);
    }

    private static TahoeCapability? Mutable(string[] parts, CapFormat format, bool isDirectory, CapAccess access)
    {
        if (parts.Length != 4 || !TryKey(parts[2], 16, out var key) || !TryKey(parts[3], 32, out var hash)) return null;
        return new(format, isDirectory, access, key, hash, 0, 0, 0);
    }

    private static bool TryKey(string text, int length, out byte[] key) =>
        TahoeCaps.TryDecodeBase32(text, out key) && key.Length == length;
}
