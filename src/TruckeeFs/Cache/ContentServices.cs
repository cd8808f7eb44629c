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

    /// <summary>The folder of an inode's staged blocks.</summary>
    public string StagingDirectory(long inode) =>
        Path.Combine(StagingRoot, inode.ToString(CultureInfo.InvariantCulture));

    public string StagingRoot { get; } = Path.Combine(cacheDirectory, "staging");
}
