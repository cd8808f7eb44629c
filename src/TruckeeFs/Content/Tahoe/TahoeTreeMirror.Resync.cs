using TruckeeFs.Meta;
using TruckeeFs.Operations;

namespace TruckeeFs.Content.Tahoe;

public sealed partial class TahoeTreeMirror
{
    public async Task<MirrorResyncReport> ResyncAsync(IMetaStore meta, bool repair, Action<ProgressReport>? progress = null, CancellationToken cancellationToken = default)
    {
        var walk = new ResyncWalk(this, meta, repair, progress, cancellationToken);
        var report = await walk.RunAsync().ConfigureAwait(false);
        if (repair && report.InStep) _needsResync = false;
        return report;
    }

    /// <summary>
    /// One resync: a walk of the metadata tree from the root, each directory compared with its
    /// mirror as a whole (one listing of each), depth first. A directory the walk has just made
    /// is known to be empty and is not listed. Each directory is listed in the store before it
    /// is read in the metadata: a name another mount adds and mirrors meanwhile is then in both
    /// or in neither, never only in the mirror, where it would be taken for one to remove.
    /// </summary>
    private sealed class ResyncWalk(TahoeTreeMirror mirror, IMetaStore meta, bool repair, Action<ProgressReport>? progress, CancellationToken cancellationToken)
    {
        private const int Page = 1000;
        private static readonly IReadOnlyDictionary<string, TahoeDirectoryEntry> Empty = new Dictionary<string, TahoeDirectoryEntry>();

        private readonly TahoeClient _client = mirror._client;
        private readonly Stack<MirroredDirectory> _pending = new();
        private readonly List<MirrorDifference> _differences = [];
        private readonly List<MirrorDifference> _remaining = [];
        private long _listed;
        private long _checked;

        public async Task<MirrorResyncReport> RunAsync()
        {
            _pending.Push(new MirroredDirectory(Schema.RootInode, TreePath.Root, mirror._rootCap, IsNew: false));
            while (_pending.TryPop(out var directory))
            {
                cancellationToken.ThrowIfCancellationRequested();
                await CompareAsync(directory).ConfigureAwait(false);
                progress?.Invoke(new ProgressReport("directories", _listed, 0, 0));
            }
            return new MirrorResyncReport(_differences, _remaining, repair, _listed, _checked);
        }

        private async Task CompareAsync(MirroredDirectory directory)
        {
            var mirrored = directory.IsNew ? Empty : await ListAsync(directory.Cap).ConfigureAwait(false);
            var expected = new Dictionary<string, DirectoryEntry>(StringComparer.Ordinal);
            foreach (var entry in Entries(directory.Inode))
            {
                // Only directories and regular files are mirrored (see ITreeMirror).
                if (entry.Inode.IsDirectory || entry.Inode.IsRegular) expected[EncodeName(entry.Name)] = entry;
            }
            foreach (var name in mirrored.Keys.Where(name => !expected.ContainsKey(name)))
            {
                await RepairAsync(new MirrorDifference("extra", $"{directory.Path.ToString().TrimEnd('/')}/{name}", "not in the filesystem"),
                    () => _client.UnlinkAsync(directory.Cap, name, cancellationToken)).ConfigureAwait(false);
            }
            foreach (var (name, entry) in expected)
            {
                _checked++;
                var path = directory.Path.Child(entry.Name);
                var found = mirrored.GetValueOrDefault(name);
                if (entry.Inode.IsDirectory) await CompareDirectoryAsync(directory.Cap, name, path, entry.Inode, found).ConfigureAwait(false);
                else await CompareFileAsync(directory.Cap, name, path, entry.Inode, found).ConfigureAwait(false);
            }
        }

        private async Task CompareDirectoryAsync(string parentCap, string name, TreePath path, Inode inode, TahoeDirectoryEntry? found)
        {
            if (found is { Kind: TahoeNodeKind.Directory, WriteCap: { } cap })
            {
                _pending.Push(new MirroredDirectory(inode.Id, path, cap, IsNew: false));
                return;
            }
            var difference = found is null
                ? new MirrorDifference("missing", path.ToString(), "directory")
                : new MirrorDifference("wrong", path.ToString(), $"{Describe(found)} where a directory belongs");
            var made = await RepairAsync(difference, async () =>
            {
                if (found is not null) await _client.UnlinkAsync(parentCap, name, cancellationToken).ConfigureAwait(false);
                return await _client.MkdirAsync(parentCap, name, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);
            // A dry run goes on into what it would make, to list everything below; it changes nothing, so needs no cap.
            if (made is not null || !repair) _pending.Push(new MirroredDirectory(inode.Id, path, made ?? "", IsNew: true));
        }

        private async Task CompareFileAsync(string parentCap, string name, TreePath path, Inode inode, TahoeDirectoryEntry? found)
        {
            var blocks = meta.GetBlocks(inode.Id);
            if (found is not null && await HoldsAsync(found, inode.Size, blocks).ConfigureAwait(false)) return;
            var difference = found is null
                ? new MirrorDifference("missing", path.ToString(), $"file of {inode.Size} bytes")
                : new MirrorDifference("wrong", path.ToString(), $"{Describe(found)} other than the file's contents ({inode.Size} bytes)");
            await RepairAsync(difference, async () =>
            {
                var cap = await mirror.FileCapAsync(inode.Size, blocks, cancellationToken).ConfigureAwait(false);
                await _client.LinkAsync(parentCap, name, cap, replace: true, cancellationToken).ConfigureAwait(false);
                return cap;
            }).ConfigureAwait(false);
        }

        /// <summary>Whether <paramref name="found"/> represents the file's contents as the mirror writes them (see the class summary).</summary>
        private async Task<bool> HoldsAsync(TahoeDirectoryEntry found, long size, IReadOnlyList<BlockRef> blocks)
        {
            if (SingleFileCap(size, blocks) is { } single) return found is { Kind: TahoeNodeKind.File } && found.Cap == single;
            if (found is not { Kind: TahoeNodeKind.Directory, Cap: { } blockDirectory }) return false;
            var listed = await ListAsync(blockDirectory).ConfigureAwait(false);
            var wanted = BlockChildren(blocks);
            return listed.Count == wanted.Count && wanted.All(b => listed.TryGetValue(b.Key, out var block) && block is { Kind: TahoeNodeKind.File } && block.Cap == b.Value);
        }

        /// <summary>Records a difference and, when repairing, makes <paramref name="change"/>; a refusal leaves the difference remaining.</summary>
        private async Task<string?> RepairAsync(MirrorDifference difference, Func<Task<string>> change)
        {
            _differences.Add(difference);
            if (!repair)
            {
                _remaining.Add(difference);
                return null;
            }
            try
            {
                return await change().ConfigureAwait(false);
            }
            catch (TahoeRequestException e)
            {
                _remaining.Add(difference with { Detail = $"{difference.Detail}; not repaired: {e.Message}" });
                return null;
            }
        }

        private async Task<IReadOnlyDictionary<string, TahoeDirectoryEntry>> ListAsync(string directoryCap)
        {
            _listed++;
            return (await _client.ListAsync(directoryCap, cancellationToken).ConfigureAwait(false)).Children;
        }

        private IEnumerable<DirectoryEntry> Entries(long directory)
        {
            for (var cookie = 0L; ;)
            {
                var page = meta.ReadDirectory(directory, cookie, Page);
                foreach (var entry in page) yield return entry;
                if (page.Count < Page) yield break;
                cookie = page[^1].Cookie;
            }
        }

        private static string Describe(TahoeDirectoryEntry entry) => entry.Kind switch
        {
            TahoeNodeKind.Directory => entry.WriteCap is null ? "a read-only directory" : "a directory",
            TahoeNodeKind.File => "a file",
            _ => "a node of unknown kind",
        };
    }

    /// <summary>A directory of the filesystem and its mirror; <see cref="IsNew"/> when the walk has just made it (or, in a dry run, would make it): empty.</summary>
    private readonly record struct MirroredDirectory(long Inode, TreePath Path, string Cap, bool IsNew);
}
