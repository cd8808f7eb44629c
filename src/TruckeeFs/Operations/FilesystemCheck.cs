using System.Text;
using TruckeeFs.Content;
using TruckeeFs.Meta;

namespace TruckeeFs.Operations;

/// <summary>One problem fsck found. <see cref="Kind"/> is a stable identifier (see <see cref="FilesystemCheck"/>).</summary>
public sealed record CheckFinding(string Kind, string Subject, string Detail);

/// <summary>One change a repair made.</summary>
public sealed record CheckRepair(string Kind, string Subject, string Action);

/// <summary>What fsck found, checked and (with repair) did.</summary>
public sealed record CheckReport(IReadOnlyList<CheckFinding> Findings, IReadOnlyList<CheckRepair> Repairs, IReadOnlyList<CheckFinding> Remaining, long CapsChecked, long BytesChecked)
{
    public bool Clean => Findings.Count == 0;
}

/// <summary>
/// <c>truckeefs fsck</c>: checks the metadata for damage and the content store for the objects
/// the block maps need, and optionally repairs. Kinds of finding:
/// <list type="bullet">
/// <item><c>dangling_entry</c>: a name of a missing inode, or in a missing or non-directory parent (repair: remove the name).</item>
/// <item><c>lost_inode</c>: an inode with links but no name (repair: name it <c>#INODE</c> in <c>/lost+found</c>).</item>
/// <item><c>unlinked_inode</c>: an inode without links or names, left by a mount that ended while it was open (repair: delete it; a mount reclaims it too).</item>
/// <item><c>wrong_nlink</c>: a link count that disagrees with the names (repair: set it).</item>
/// <item><c>stray_rows</c>: block map or xattr rows of a missing inode (repair: delete them).</item>
/// <item><c>unrecorded_cap</c> and <c>wrong_refcount</c>: the contents table disagrees with the block maps (repair: recount; objects nothing uses are deleted).</item>
/// <item><c>missing_content</c>: the store does not have an object a block map names (repair: those blocks become holes, reading as zeros; the files are named).</item>
/// <item><c>unchecked_content</c>: the store failed while checking an object (never repaired: a store that is down has not lost anything).</item>
/// </list>
/// Run the repair while the filesystem is not mounted anywhere: a mount may hold unlinked
/// files open and stage changes the check cannot see.
/// </summary>
public sealed class FilesystemCheck(IMetaStore meta, IContentStore store, Action<ProgressReport>? progress = null)
{
    private static readonly byte[] LostAndFound = "lost+found"u8.ToArray();

    public async Task<CheckReport> RunAsync(bool repair, CancellationToken cancellationToken = default)
    {
        var (findings, missing, capsChecked, bytesChecked) = await FindAsync(cancellationToken).ConfigureAwait(false);
        if (!repair || findings.Count == 0) return new CheckReport(findings, [], repair ? [] : findings, capsChecked, bytesChecked);

        var repairs = new List<CheckRepair>();
        await RepairAsync(missing, repairs, cancellationToken).ConfigureAwait(false);
        var (remaining, _, _, _) = await FindAsync(cancellationToken).ConfigureAwait(false);
        return new CheckReport(findings, repairs, remaining, capsChecked, bytesChecked);
    }

    private async Task<(List<CheckFinding> Findings, HashSet<string> Missing, long Caps, long Bytes)> FindAsync(CancellationToken cancellationToken)
    {
        var findings = new List<CheckFinding>();
        progress?.Invoke(new ProgressReport("names", 0, 5, 0));
        foreach (var entry in meta.DanglingEntries())
            findings.Add(new("dangling_entry", $"{InodePaths.Describe(meta, entry.Parent).TrimEnd('/')}/{InodePaths.Name(entry.Name)}",
                $"entry {entry.Id} in directory {entry.Parent} names inode {entry.Inode}, {(meta.GetInode(entry.Inode) is null ? "which does not exist" : "but its parent is missing or not a directory")}"));
        progress?.Invoke(new ProgressReport("names", 1, 5, 0));
        foreach (var inode in meta.LostInodes())
            findings.Add(new("lost_inode", $"inode {inode}", $"has {meta.GetInode(inode)?.Nlink} links but no name"));
        foreach (var inode in meta.OrphanInodes())
            findings.Add(new("unlinked_inode", $"inode {inode}", "has no links and no name (unlinked while open when a mount ended)"));
        progress?.Invoke(new ProgressReport("names", 2, 5, 0));
        foreach (var wrong in meta.LinkCountMismatches())
            findings.Add(new("wrong_nlink", InodePaths.Describe(meta, wrong.Inode), $"inode {wrong.Inode} has link count {wrong.Nlink}, its names say {wrong.Expected}"));
        progress?.Invoke(new ProgressReport("names", 3, 5, 0));
        foreach (var inode in meta.StrayRowInodes())
            findings.Add(new("stray_rows", $"inode {inode}", "block map or extended attribute rows of an inode that does not exist"));
        progress?.Invoke(new ProgressReport("names", 4, 5, 0));
        var uses = meta.CapUses();
        progress?.Invoke(new ProgressReport("names", 5, 5, 0));

        var missing = new HashSet<string>(StringComparer.Ordinal);
        long checkedCaps = 0, checkedBytes = 0;
        var used = uses.Where(u => u.Uses > 0).ToList();
        foreach (var use in used)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (use.Refs is null)
                findings.Add(new("unrecorded_cap", use.Cap, $"used by {use.Uses} blocks but missing from the contents table"));
            else if (use.Refs != use.Uses)
                findings.Add(new("wrong_refcount", use.Cap, $"reference count {use.Refs}, used by {use.Uses} blocks"));
            var problem = await ReadableAsync(use, cancellationToken).ConfigureAwait(false);
            if (problem is { } found)
            {
                if (found.Kind == "missing_content") missing.Add(use.Cap);
                findings.Add(found);
            }
            checkedCaps++;
            checkedBytes += use.Length;
            progress?.Invoke(new ProgressReport("contents", checkedCaps, used.Count, checkedBytes));
        }
        foreach (var unused in uses.Where(u => u.Uses == 0))
            findings.Add(new("wrong_refcount", unused.Cap, $"reference count {unused.Refs}, used by no block"));
        return (findings, missing, checkedCaps, checkedBytes);
    }

    /// <summary>Reads the object's last byte: it must exist and be as long as recorded.</summary>
    private async Task<CheckFinding?> ReadableAsync(CapUse use, CancellationToken cancellationToken)
    {
        // Which files need it is looked up only for a problem: a query per healthy object would dominate the check.
        string files() => FilesUsing(use.Cap);
        try
        {
            if (store.LocalPath(use.Cap) is { } path)
            {
                var info = new FileInfo(path);
                if (!info.Exists) return new("missing_content", use.Cap, $"not in the content store; needed by {files()}");
                return info.Length == use.Length ? null : new("missing_content", use.Cap, $"holds {info.Length} bytes, {use.Length} recorded; needed by {files()}");
            }
            if (use.Length == 0) return null;
            var last = new byte[1];
            var n = await store.ReadAsync(use.Cap, use.Length - 1, last, cancellationToken).ConfigureAwait(false);
            return n == 1 ? null : new("missing_content", use.Cap, $"shorter than the {use.Length} bytes recorded; needed by {files()}");
        }
        catch (ContentNotFoundException)
        {
            return new("missing_content", use.Cap, $"not in the content store; needed by {files()}");
        }
        catch (ContentStoreException e)
        {
            return new("unchecked_content", use.Cap, $"{store.Description} failed while checking it: {e.Message}");
        }
    }

    private string FilesUsing(string cap)
    {
        var blocks = meta.BlocksUsing(cap);
        var text = new StringBuilder();
        foreach (var group in blocks.GroupBy(b => b.Inode).Take(5))
            text.Append(text.Length == 0 ? "" : ", ").Append(InodePaths.Describe(meta, group.Key)).Append(" block ").AppendJoin(',', group.Select(b => b.Index));
        if (blocks.Select(b => b.Inode).Distinct().Count() > 5) text.Append(", ...");
        return text.ToString();
    }

    private async Task RepairAsync(HashSet<string> missing, List<CheckRepair> repairs, CancellationToken cancellationToken)
    {
        // Names first: removing a dangling name can leave an inode lost, and adopting lost
        // inodes changes link counts, which are recounted after both.
        foreach (var entry in meta.DanglingEntries())
        {
            var subject = $"entry {entry.Id} \"{InodePaths.Name(entry.Name)}\" in directory {entry.Parent}";
            if (meta.RemoveDanglingEntry(entry.Id)) repairs.Add(new("dangling_entry", subject, "removed the name"));
        }
        var lost = meta.LostInodes();
        if (lost.Count > 0)
        {
            var directory = LostAndFoundDirectory();
            foreach (var inode in lost)
            {
                var name = Encoding.UTF8.GetBytes($"#{inode}");
                if (meta.AdoptLostInode(inode, directory, name)) repairs.Add(new("lost_inode", $"inode {inode}", $"named it /lost+found/#{inode}"));
            }
        }
        foreach (var inode in meta.OrphanInodes())
        {
            if (meta.DeleteInode(inode, out var freed) != 0) continue;
            await DeleteObjectsAsync(freed, cancellationToken).ConfigureAwait(false);
            repairs.Add(new("unlinked_inode", $"inode {inode}", $"deleted it{Freed(freed)}"));
        }
        foreach (var inode in meta.StrayRowInodes())
            repairs.Add(new("stray_rows", $"inode {inode}", $"deleted {meta.RemoveStrayRows(inode)} rows"));
        foreach (var wrong in meta.LinkCountMismatches())
        {
            if (meta.FixLinkCount(wrong.Inode) is { } links) repairs.Add(new("wrong_nlink", InodePaths.Describe(meta, wrong.Inode), $"set the link count of inode {wrong.Inode} to {links}"));
        }
        foreach (var cap in missing)
        {
            var files = FilesUsing(cap);
            var punched = meta.PunchBlocksUsing(cap);
            if (punched.Count > 0) repairs.Add(new("missing_content", cap, $"{punched.Count} blocks that read it now read as zeros: {files}"));
        }
        foreach (var use in meta.CapUses().Where(u => u.Refs != u.Uses))
        {
            var unreferenced = meta.FixReferenceCount(use.Cap);
            if (unreferenced) await DeleteObjectsAsync([use.Cap], cancellationToken).ConfigureAwait(false);
            repairs.Add(new(use.Refs is null ? "unrecorded_cap" : "wrong_refcount", use.Cap,
                unreferenced ? "no block uses it: forgot it and deleted its object" : $"set its reference count to {use.Uses}"));
        }
    }

    private long LostAndFoundDirectory()
    {
        if (meta.Lookup(Schema.RootInode, LostAndFound) is { } existing && existing.IsDirectory) return existing.Id;
        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var status = meta.Create(Schema.RootInode, LostAndFound, new NewNode(FileModes.Directory | 0x1C0 /* 0700 */, 0, 0), now, out var created);
        if (status != 0) throw new MetaStoreException($"fsck: cannot create /lost+found (errno {status}); rename what is there and run it again");
        return created.Id;
    }

    private async Task DeleteObjectsAsync(IReadOnlyList<string> caps, CancellationToken cancellationToken)
    {
        foreach (var cap in caps)
        {
            if (meta.IsUnreferenced(cap)) await store.DeleteAsync(cap, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Freed(IReadOnlyList<string> caps) => caps.Count == 0 ? "" : $" and {caps.Count} objects only it used";
}
