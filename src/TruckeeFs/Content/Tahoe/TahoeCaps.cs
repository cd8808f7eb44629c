using System.Globalization;

namespace TruckeeFs.Content.Tahoe;

/// <summary>
/// The parts of Tahoe-LAFS cap syntax a client needs without asking a gateway: Tahoe's base32
/// (RFC 4648 alphabet, lowercase, no padding), literal caps, which carry files of up to
/// <see cref="MaxLiteralSize"/> bytes inside the cap itself, and the size field of CHK caps.
/// Pure functions; safe from any thread.
/// </summary>
public static class TahoeCaps
{
    /// <summary>The largest file Tahoe stores as a literal cap; one byte more gives a CHK cap.</summary>
    public const int MaxLiteralSize = 55;

    /// <summary>Prefix of literal (content-in-cap) file caps. <c>URI:LIT:</c> alone is the empty file.</summary>
    public const string LiteralPrefix = "URI:LIT:";

    /// <summary>Prefix of immutable, erasure-coded file read caps.</summary>
    public const string ChkPrefix = "URI:CHK:";

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>Encodes bytes as Tahoe writes them in caps: lowercase base32 without padding.</summary>
    public static string EncodeBase32(ReadOnlySpan<byte> data)
    {
        var chars = new char[(data.Length * 8 + 4) / 5];
        int buffer = 0, bits = 0, n = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                chars[n++] = Alphabet[(buffer >> bits) & 31];
            }
        }
        if (bits > 0)
            chars[n++] = Alphabet[(buffer << (5 - bits)) & 31];
        return new string(chars, 0, n);
    }

    /// <summary>
    /// Decodes Tahoe base32. Fails on characters outside the alphabet and on a length no encoder
    /// produces, so a mistyped cap is refused instead of silently naming other bytes.
    /// </summary>
    public static bool TryDecodeBase32(ReadOnlySpan<char> text, out byte[] data)
    {
        data = [];
        var length = text.Length * 5 / 8;
        if ((length * 8 + 4) / 5 != text.Length) return false;
        var result = new byte[length];
        int buffer = 0, bits = 0, n = 0;
        foreach (var c in text)
        {
            var value = c is >= 'a' and <= 'z' ? c - 'a' : c is >= '2' and <= '7' ? c - '2' + 26 : -1;
            if (value < 0) return false;
            buffer = ((buffer << 5) | value) & 0xfff;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                result[n++] = (byte)(buffer >> bits);
            }
        }
        // Leftover bits must be zero padding, as Tahoe's encoder leaves them.
        if ((buffer & ((1 << bits) - 1)) != 0) return false;
        data = result;
        return true;
    }

    /// <summary>The literal cap holding <paramref name="data"/> (at most <see cref="MaxLiteralSize"/> bytes).</summary>
    public static string LiteralCap(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxLiteralSize)
            throw new ArgumentException($"a literal cap holds at most {MaxLiteralSize} bytes, not {data.Length}", nameof(data));
        return LiteralPrefix + EncodeBase32(data);
    }

    /// <summary>Extracts the bytes a well-formed literal cap carries.</summary>
    public static bool TryDecodeLiteral(string cap, out byte[] data)
    {
        data = [];
        return cap.StartsWith(LiteralPrefix, StringComparison.Ordinal)
            && TryDecodeBase32(cap.AsSpan(LiteralPrefix.Length), out data)
            && data.Length <= MaxLiteralSize;
    }

    /// <summary>
    /// Reads the size field of a CHK cap (<c>URI:CHK:key:hash:k:N:size</c>), which Tahoe puts in
    /// the cap so that sizes are known without touching the grid.
    /// </summary>
    public static bool TryGetChkSize(string cap, out long size)
    {
        size = 0;
        if (!cap.StartsWith(ChkPrefix, StringComparison.Ordinal)) return false;
        var parts = cap.Split(':');
        return parts.Length == 7
            && long.TryParse(parts[6], NumberStyles.None, CultureInfo.InvariantCulture, out size);
    }
}
