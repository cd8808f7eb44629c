using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TruckeeFs.Testing.Tahoe;

/// <summary>
/// How Tahoe packs a directory into bytes, which decides the size field of a
/// <c>URI:DIR2-CHK:</c> cap and the data inside a <c>URI:DIR2-LIT:</c> cap: one netstring per
/// child, in name order, holding netstrings of the UTF-8 name, the read cap, the (for immutable
/// directories empty) encrypted write cap and the metadata as Python's <c>json.dumps</c> writes
/// it. Also orders names the way Tahoe lists them (by code point).
/// </summary>
internal static class TahoeDirectoryFormat
{
    /// <summary>Orders strings by Unicode code point, as Python sorts them.</summary>
    public static readonly IComparer<string> CodePointOrder = Comparer<string>.Create(CompareCodePoints);

    public static byte[] PackImmutable(IReadOnlyDictionary<string, DirectoryEntry> children)
    {
        var packed = new List<byte>();
        foreach (var (name, entry) in children.OrderBy(c => c.Key, CodePointOrder))
        {
            var inner = new List<byte>();
            Netstring(inner, Encoding.UTF8.GetBytes(name));
            Netstring(inner, Encoding.ASCII.GetBytes(entry.ReadCap));
            Netstring(inner, []);
            Netstring(inner, Encoding.UTF8.GetBytes(PythonJson(entry.Metadata())));
            Netstring(packed, [.. inner]);
        }
        return [.. packed];
    }

    /// <summary>Size of a mutable directory's packed form, for deep-stats (write caps are packed too).</summary>
    public static int PackedSize(IReadOnlyDictionary<string, DirectoryEntry> children) =>
        children.Sum(c =>
        {
            var size = NetstringLength(Encoding.UTF8.GetByteCount(c.Key)) + NetstringLength(c.Value.ReadCap.Length)
                + NetstringLength(c.Value.WriteCap?.Length ?? 0) + NetstringLength(Encoding.UTF8.GetByteCount(PythonJson(c.Value.Metadata())));
            return NetstringLength(size);
        });

    public static Dictionary<string, DirectoryEntry>? UnpackImmutable(byte[] packed)
    {
        var children = new Dictionary<string, DirectoryEntry>(StringComparer.Ordinal);
        var position = 0;
        while (position < packed.Length)
        {
            if (ReadNetstring(packed, ref position) is not { } entry) return null;
            var inner = 0;
            var name = ReadNetstring(entry, ref inner);
            var readCap = ReadNetstring(entry, ref inner);
            var writeCap = ReadNetstring(entry, ref inner);
            var metadata = ReadNetstring(entry, ref inner);
            if (name is null || readCap is null || writeCap is null || metadata is null) return null;
            children[Encoding.UTF8.GetString(name)] = new DirectoryEntry
            {
                ReadCap = Encoding.ASCII.GetString(readCap),
                User = JsonNode.Parse(metadata) as JsonObject ?? [],
            };
        }
        return children;
    }

    /// <summary>JSON as Python's <c>json.dumps</c> writes it by default (", " and ": ", ASCII only).</summary>
    public static string PythonJson(JsonNode? node)
    {
        var text = new StringBuilder();
        Write(node);
        return text.ToString();

        void Write(JsonNode? value)
        {
            switch (value)
            {
                case null:
                    text.Append("null");
                    break;
                case JsonObject obj:
                    text.Append('{');
                    var first = true;
                    foreach (var (key, child) in obj)
                    {
                        if (!first) text.Append(", ");
                        first = false;
                        WriteString(key);
                        text.Append(": ");
                        Write(child);
                    }
                    text.Append('}');
                    break;
                case JsonArray array:
                    text.Append('[');
                    for (var i = 0; i < array.Count; i++)
                    {
                        if (i > 0) text.Append(", ");
                        Write(array[i]);
                    }
                    text.Append(']');
                    break;
                default:
                    if (value.GetValueKind() == JsonValueKind.String) WriteString(value.GetValue<string>());
                    else text.Append(value.ToJsonString());
                    break;
            }
        }

        void WriteString(string s)
        {
            text.Append('"');
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': text.Append("\\\""); break;
                    case '\\': text.Append("\\\\"); break;
                    case '\n': text.Append("\\n"); break;
                    case '\r': text.Append("\\r"); break;
                    case '\t': text.Append("\\t"); break;
                    default:
                        if (c < 0x20 || c > 0x7e) text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                        else text.Append(c);
                        break;
                }
            }
            text.Append('"');
        }
    }

    private static int CompareCodePoints(string? a, string? b)
    {
        if (a is null || b is null) return string.CompareOrdinal(a, b);
        var left = a.EnumerateRunes();
        var right = b.EnumerateRunes();
        while (true)
        {
            var hasLeft = left.MoveNext();
            var hasRight = right.MoveNext();
            if (!hasLeft || !hasRight) return hasLeft.CompareTo(hasRight);
            var order = left.Current.Value.CompareTo(right.Current.Value);
            if (order != 0) return order;
        }
    }

    private static void Netstring(List<byte> output, byte[] value)
    {
        output.AddRange(Encoding.ASCII.GetBytes(value.Length.ToString(CultureInfo.InvariantCulture) + ":"));
        output.AddRange(value);
        output.Add((byte)',');
    }

    private static int NetstringLength(int length) => length.ToString(CultureInfo.InvariantCulture).Length + 2 + length;

    private static byte[]? ReadNetstring(byte[] data, ref int position)
    {
        var colon = Array.IndexOf(data, (byte)':', position);
        if (colon < 0 || !int.TryParse(Encoding.ASCII.GetString(data, position, colon - position), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            || colon + 1 + length >= data.Length || data[colon + 1 + length] != (byte)',')
            return null;
        var value = data[(colon + 1)..(colon + 1 + length)];
        position = colon + 2 + length;
        return value;
    }
}
