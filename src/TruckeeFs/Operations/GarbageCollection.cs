using System.Runtime.InteropServices;
using TruckeeFs.Content;
using TruckeeFs.Meta;

namespace TruckeeFs.Operations;

/// <summary>Something gc found unreferenced: a content object (by cap) or a cached block (by file), and its size.</summary>
public sealed record GarbageItem(string Kind, string Name, long Bytes);

/// <summary>What gc found and whether it deleted it. <see cref="StoreNote"/> says why a store was not listed, if it was not.</summary>
public sealed record GarbageReport(IReadOnlyList<GarbageItem> Items, bool Deleted, long ReferencedCaps, string? StoreNote)
{
    public long Bytes => Items.Sum(i => i.Bytes);
}

/// <summary>
/// <c>truckeefs gc</c>: finds content objects no block map or contents row references, and
/// cached blocks whose caps nothing references, and deletes them when asked. Something younger
/// than <c>minimumAge</c> is kept: a running mount stores an object a moment before it commits
/// the block map naming it, and fetches a block into the cache before using it.
/// </summary>
public sealed partial class GarbageCollection(IMetaStore meta, IContentStore store, string cacheDirectory, TimeSpan minimumAge, Action<ProgressReport>? progress = null)
{
    public async Task<GarbageReport> RunAsync(bool delete, CancellationToken cancellationToken = default)
    {
        var uses = meta.CapUses();
        var referenced = uses.Where(u => u.Uses > 0 || u.Refs > 0).Select(u => u.Cap).ToHashSet(StringComparer.Ordinal);
        var cutoff = DateTime.UtcNow - minimumAge;
        var items = new List<GarbageItem>();

        string? note = null;
        if (store is LocalContentStore local)
        {
            long seen = 0;
            foreach (var (cap, file) in local.Objects())
            {
                if (++seen % 1000 == 0) progress?.Invoke(new ProgressReport("listing contents", seen, 0, 0));
                if (!referenced.Contains(cap) && ChangedBefore(file, cutoff)) items.Add(new("object", cap, file.Length));
            }
        }
        else
        {
            note = $"{store.Description} cannot list its objects; unreferenced Tahoe objects expire when their leases are no longer renewed";
        }

        var blocks = new DirectoryInfo(Path.Combine(cacheDirectory, "blocks"));
        if (blocks.Exists)
        {
            var wanted = referenced.Select(Cache.BlockCache.FileName).ToHashSet(StringComparer.Ordinal);
            foreach (var file in blocks.EnumerateFiles())
            {
                // A fetch in progress is a ".part" file, a finished block its cap's hash.
                var name = file.Name.EndsWith(".part", StringComparison.Ordinal) ? null : file.Name;
                if ((name is null || !wanted.Contains(name)) && ChangedBefore(file, cutoff)) items.Add(new("cached_block", file.FullName, file.Length));
            }
        }

        if (delete)
        {
            long done = 0, bytes = 0;
            foreach (var item in items)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (item.Kind == "object")
                {
                    // A commit may have taken a reference since the listing.
                    if (meta.IsUnreferenced(item.Name)) await store.DeleteAsync(item.Name, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    File.Delete(item.Name);
                }
                bytes += item.Bytes;
                progress?.Invoke(new ProgressReport("deleting", ++done, items.Count, bytes));
            }
        }
        return new GarbageReport(items, delete, referenced.Count, note);
    }

    /// <summary>
    /// Whether the file's status last changed before <paramref name="cutoff"/>. The change time,
    /// not the modification time: a local store hard-links a staged block that may have been
    /// written long ago, and linking moves only the change time.
    /// </summary>
    private static bool ChangedBefore(FileInfo file, DateTime cutoff)
    {
        if (stat(file.FullName, out var buffer) != 0) return false;
        var changed = DateTime.UnixEpoch.AddTicks(buffer.CtimeSeconds * TimeSpan.TicksPerSecond + buffer.CtimeNanoseconds / 100);
        return changed < cutoff;
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int stat(string path, out StatBuffer buffer);

    /// <summary>glibc's struct stat on x86-64 Linux (144 bytes; st_ctim at 104).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    private struct StatBuffer
    {
        [FieldOffset(104)] public long CtimeSeconds;
        [FieldOffset(112)] public long CtimeNanoseconds;
    }
}
