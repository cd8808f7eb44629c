using System.Globalization;
using TruckeeFs.Content;
using TruckeeFs.Meta;

namespace TruckeeFs.Cache;

/// <summary>What the contents of every file share: stores, cache, staging area and block size.</summary>
internal sealed class ContentServices(IMetaStore meta, IContentStore store, BlockCache cache, ContentCollector collector, string cacheDirectory, long blockSize)
{
    public IMetaStore Meta => meta;
    public IContentStore Store => store;
    public BlockCache Cache => cache;
    public ContentCollector Collector => collector;
    public long BlockSize => blockSize;

    /// <summary>Where staged blocks live: one flat folder, a file per block named "inode.index".</summary>
    public string StagingRoot { get; } = Directory.CreateDirectory(Path.Combine(cacheDirectory, "staging")).FullName;

    /// <summary>The file of one staged block.</summary>
    public string StagedPath(long inode, long index) =>
        Path.Combine(StagingRoot, string.Create(CultureInfo.InvariantCulture, $"{inode}.{index}"));

    /// <summary>
    /// The staged blocks an inode has on disk from a commit that failed or a mount that crashed,
    /// by block index. Only inodes known to have some are looked for, to keep opens cheap.
    /// </summary>
    public IReadOnlyList<(long Index, string Path)> LeftoverBlocks(long inode)
    {
        if (!_leftovers.TryRemove(inode, out _)) return [];
        var prefix = string.Create(CultureInfo.InvariantCulture, $"{inode}.");
        var blocks = new List<(long, string)>();
        foreach (var path in Directory.EnumerateFiles(StagingRoot, prefix + "*"))
        {
            if (long.TryParse(Path.GetFileName(path).AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                blocks.Add((index, path));
        }
        return blocks;
    }

    /// <summary>Remembers that an inode still has staged blocks on disk.</summary>
    public void AddLeftovers(long inode) => _leftovers.TryAdd(inode, 0);

    /// <summary>Inodes with staged blocks on disk, as the staging folder shows them (after a crash).</summary>
    public IReadOnlyCollection<long> ScanLeftovers()
    {
        foreach (var path in Directory.EnumerateFiles(StagingRoot))
        {
            var name = Path.GetFileName(path);
            var dot = name.IndexOf('.');
            if (dot > 0 && long.TryParse(name.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var inode))
                _leftovers.TryAdd(inode, 0);
            else
                File.Delete(path);
        }
        return [.. _leftovers.Keys];
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte> _leftovers = new();
}
