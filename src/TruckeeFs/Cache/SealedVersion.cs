using System.Globalization;
using System.Text;
using TruckeeFs.Meta;

namespace TruckeeFs.Cache;

/// <summary>
/// One block of a file version: either staged on local disk or an object in the content store
/// (a cap and the object's length). Holes are not blocks.
/// </summary>
internal readonly record struct Block(StagedBlock? Staged, string? Cap, long Length)
{
    /// <summary>The bytes the block holds: its staged file's, or its object's.</summary>
    public long Bytes => Staged?.Length ?? Length;

    public static Block Stored(string cap, long length) => new(null, cap, length);

    public static Block Of(StagedBlock staged) => new(staged, null, 0);
}

/// <summary>
/// A complete version of a file that a close sealed and that is waiting to be committed: every
/// block (staged blocks frozen), size and times. Its journal entry on local disk
/// (<c>staging/INODE.commit</c>) records the same, so that a mount killed before the commit
/// landed commits exactly this version at its next start — including a truncation, which the
/// staged blocks alone cannot tell. A version committed before its close returns needs no
/// entry until its commit fails (<see cref="MakeDurable"/> writes one then).
/// </summary>
/// <param name="attributes">Mode, owner and atime changed while the version was written, committed with it.</param>
internal sealed class SealedVersion(long inode, IReadOnlyDictionary<long, Block> blocks, long size, long mtime, long ctime, AttributeChange attributes)
{
    private const string Header = "truckeefs commit 1";

    public long Inode => inode;

    public IReadOnlyDictionary<long, Block> Blocks => blocks;

    public long Size => size;

    public long Mtime => mtime;

    public long Ctime => ctime;

    public AttributeChange Attributes => attributes;

    /// <summary>Sealed on a file with no committed version (version 0): see <see cref="ContentCommit.IsFirst"/>.</summary>
    public bool IsFirst { get; init; }

    /// <summary>Its journal entry has been written.</summary>
    public bool Journaled { get; private set; }

    public IEnumerable<StagedBlock> StagedBlocks => blocks.Values.Where(b => b.Staged is not null).Select(b => b.Staged!);

    /// <summary>Whether <paramref name="staged"/> is one of this version's blocks.</summary>
    public bool Holds(StagedBlock staged) => blocks.TryGetValue(staged.Index, out var block) && ReferenceEquals(block.Staged, staged);

    /// <summary>The version as a metadata commit; every staged block must have been uploaded.</summary>
    public ContentCommit ToCommit() => new(
        [.. blocks.OrderBy(b => b.Key).Select(b => b.Value.Staged is { } staged
            ? new BlockRef(b.Key, staged.Cap ?? throw new InvalidOperationException($"block {b.Key} of inode {inode} is not uploaded"), staged.Length)
            : new BlockRef(b.Key, b.Value.Cap, b.Value.Length))],
        size, mtime, ctime) { Attributes = attributes, IsFirst = IsFirst };

    /// <summary>
    /// Writes the journal entry atomically (a temporary file renamed over the old entry), so a
    /// crash leaves either the previous sealed version or this one. With
    /// <paramref name="durable"/> the entry is on stable storage when this returns; otherwise it
    /// survives a crash of the process (the kernel holds it) but not necessarily a power loss.
    /// </summary>
    public void WriteJournal(string path, bool durable)
    {
        var text = new StringBuilder();
        text.Append(Header).Append('\n');
        text.Append(CultureInfo.InvariantCulture, $"size {size}\nmtime {mtime}\nctime {ctime}\n");
        foreach (var (name, value) in AttributeLines(attributes)) text.Append(CultureInfo.InvariantCulture, $"attr {name} {value}\n");
        foreach (var (index, block) in blocks.OrderBy(b => b.Key))
        {
            if (block.Staged is { } staged) text.Append(CultureInfo.InvariantCulture, $"staged {index} {System.IO.Path.GetFileName(staged.Path)}\n");
            else text.Append(CultureInfo.InvariantCulture, $"stored {index} {block.Length} {block.Cap}\n");
        }
        text.Append("end\n");
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
            if (durable) stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
        if (durable) _ = Posix.SyncDirectory(System.IO.Path.GetDirectoryName(path)!);
        Journaled = true;
    }

    /// <summary>Makes the version's journal entry (written now if it was not) and the blocks it names survive a power loss.</summary>
    public void MakeDurable(string path)
    {
        foreach (var staged in StagedBlocks) staged.Flush();
        if (!Journaled)
        {
            WriteJournal(path, durable: true);
            return;
        }
        using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            RandomAccess.FlushToDisk(handle);
        _ = Posix.SyncDirectory(System.IO.Path.GetDirectoryName(path)!);
    }

    private static IEnumerable<(string Name, long Value)> AttributeLines(AttributeChange change)
    {
        if (change.Mode is { } mode) yield return ("mode", mode);
        if (change.Uid is { } uid) yield return ("uid", uid);
        if (change.Gid is { } gid) yield return ("gid", gid);
        if (change.Atime is { } atime) yield return ("atime", atime);
    }

    /// <summary>Reads a journal entry; staged blocks are looked for beside it. Throws <see cref="InvalidDataException"/> for a damaged entry.</summary>
    public static SealedVersion ReadJournal(long inode, string path)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        var lines = File.ReadAllLines(path);
        if (lines.Length < 5 || lines[0] != Header || lines[^1] != "end")
            throw new InvalidDataException($"{path}: not a complete commit journal entry");
        long Field(int line, string name) =>
            lines[line].StartsWith(name + " ", StringComparison.Ordinal) ? Number(lines[line][(name.Length + 1)..])
            : throw new InvalidDataException($"{path}: line {line + 1} should be {name}");
        var size = Field(1, "size");
        var mtime = Field(2, "mtime");
        var ctime = Field(3, "ctime");
        var blocks = new Dictionary<long, Block>();
        var attributes = AttributeChange.None;
        foreach (var line in lines[4..^1])
        {
            var fields = line.Split(' ', 4);
            if (fields is ["attr", var attribute, var value])
            {
                var number = Number(value);
                attributes = attributes.Then(attribute switch
                {
                    "mode" => new AttributeChange { Mode = number },
                    "uid" => new AttributeChange { Uid = number },
                    "gid" => new AttributeChange { Gid = number },
                    "atime" => new AttributeChange { Atime = number },
                    _ => throw new InvalidDataException($"{path}: unknown attribute \"{attribute}\""),
                });
            }
            else if (fields is ["staged", var index, var name] && !name.Contains('/', StringComparison.Ordinal))
            {
                var staged = System.IO.Path.Combine(directory, name);
                if (!File.Exists(staged)) throw new InvalidDataException($"{path}: staged block {staged} is missing");
                blocks[Number(index)] = Block.Of(StagedBlock.OpenFrozen(Number(index), staged));
            }
            else if (fields is ["stored", var storedIndex, var length, var cap])
            {
                blocks[Number(storedIndex)] = Block.Stored(cap, Number(length));
            }
            else
            {
                throw new InvalidDataException($"{path}: unreadable line \"{line}\"");
            }
        }
        return new SealedVersion(inode, blocks, size, mtime, ctime, attributes) { Journaled = true };

        long Number(string text) => long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? n : throw new InvalidDataException($"{path}: \"{text}\" is not a number");
    }
}
