namespace TruckeeFs.Operations;

/// <summary>Names and paths of inodes, for reports people read.</summary>
public static class InodePaths
{
    private const int MaxDepth = 4096;

    /// <summary>The inode's first path from the root ("/a/b"), or "inode N (no name)".</summary>
    public static string Describe(Meta.IMetaStore meta, long inode)
    {
        if (inode == Meta.Schema.RootInode) return "/";
        var parts = new List<string>();
        for (var current = inode; current != Meta.Schema.RootInode && parts.Count < MaxDepth;)
        {
            var names = meta.NamesOf(current);
            if (names.Count == 0) return parts.Count == 0 ? $"inode {inode} (no name)" : $"inode {current} (no name)/{string.Join('/', parts)}";
            parts.Insert(0, Name(names[0].Name));
            current = names[0].Parent;
        }
        return "/" + string.Join('/', parts);
    }

    /// <summary>A name as text: UTF-8 where it is, escapes where it is not.</summary>
    public static string Name(byte[] name)
    {
        try
        {
            return new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(name);
        }
        catch (System.Text.DecoderFallbackException)
        {
            return string.Concat(name.Select(b => b is >= 0x20 and < 0x7F and not (byte)'\\' ? ((char)b).ToString() : $"\\x{b:x2}"));
        }
    }
}
