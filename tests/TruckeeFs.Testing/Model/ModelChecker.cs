using System.Security.Cryptography;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Testing.Model;

/// <summary>
/// A randomized model test. A seeded generator draws operations over a small namespace (names
/// that differ only in case or normalization, non-UTF-8 names, 255-byte names and one 256-byte
/// name) and applies each one to two roots: the system under test and a reference directory on a
/// local filesystem. Every result and errno must agree, and every <see cref="CompareEvery"/> steps
/// and at the end of <see cref="Run"/> the whole trees must agree (see <see cref="TreeSnapshot"/>).
/// A few descriptors stay open across operations, so writes and reads also go through files that
/// have since been renamed or unlinked.
/// A disagreement throws <see cref="ModelMismatchException"/> with the seed, the step and the last
/// operations. The sequence depends only on the seed and the reference's behaviour (its listings
/// are sorted), so the same seed on fresh roots replays it.
/// </summary>
public sealed partial class ModelChecker : IDisposable
{
    private const int RecentCount = 20;
    private const int MaxOpenFiles = 4;
    private const int BlockSize = 64 * 1024;

    /// <summary>Files stay below 1 MiB (16 blocks of 64 KiB) so whole-tree comparisons stay cheap.</summary>
    private const long MaxFileSize = 1024 * 1024;

    private const int Sut = 0;
    private const int Reference = 1;

    private readonly PosixPath[] _roots;
    private readonly string[] _rootNames;
    private readonly Random _random;
    private readonly Queue<string> _recent = new();
    private readonly List<OpenFile> _open = [];
    private readonly Dictionary<string, int> _coverage = new(StringComparer.Ordinal);
    private readonly (int Weight, Action Operation)[] _operations;
    private readonly int _totalWeight;
    private List<Node> _tree = [];
    private bool _treeStale = true;

    /// <summary>Prepares a run over two existing, empty directories.</summary>
    /// <param name="systemUnderTest">Root in the filesystem under test (a mount point, or a directory in it).</param>
    /// <param name="reference">Root on a local filesystem with hard links and user.* xattrs (see <see cref="TempDirectory.CreateWithXattrsAndLinks"/>).</param>
    /// <param name="seed">Determines the whole sequence.</param>
    public ModelChecker(string systemUnderTest, string reference, int seed)
    {
        _rootNames = [Path.GetFullPath(systemUnderTest), Path.GetFullPath(reference)];
        _roots = [PosixPath.FromString(_rootNames[Sut]), PosixPath.FromString(_rootNames[Reference])];
        Seed = seed;
        _random = new Random(seed);
        _operations =
        [
            (8, Create),
            (10, WritePath),
            (6, ReadPath),
            (4, TruncatePath),
            (9, Rename),
            (4, Link),
            (6, Unlink),
            (6, Mkdir),
            (4, Rmdir),
            (3, Chmod),
            (3, Symlink),
            (2, ReadLink),
            (4, SetXattr),
            (3, GetXattr),
            (2, RemoveXattr),
            (2, ListXattr),
            (6, Stat),
            (2, ReadDirectory),
            (5, OpenAndKeep),
            (8, FdWrite),
            (5, FdRead),
            (3, FdTruncate),
            (3, FdStat),
            (1, FdSync),
            (3, FdClose),
        ];
        _totalWeight = _operations.Sum(o => o.Weight);
    }

    /// <summary>The seed the run was created with.</summary>
    public int Seed { get; }

    /// <summary>Operations applied so far.</summary>
    public int Step { get; private set; }

    /// <summary>Whole trees are compared after every this many operations (and at the end of <see cref="Run"/>).</summary>
    public int CompareEvery { get; init; } = 100;

    /// <summary>The last operations (oldest first), each with the reference's result.</summary>
    public IReadOnlyList<string> RecentOperations => [.. _recent];

    /// <summary>
    /// How often each call ended with each result on the reference ("rename:ENOTEMPTY",
    /// "fd-pwrite:OK"; the call is the first word of the logged operation): lets a test check that
    /// a run really exercised the paths it claims to.
    /// </summary>
    public IReadOnlyDictionary<string, int> Coverage => _coverage;

    /// <summary>Applies <paramref name="operations"/> more operations, then compares the trees.</summary>
    /// <exception cref="ModelMismatchException">The roots disagreed.</exception>
    public void Run(int operations)
    {
        for (var i = 0; i < operations; i++)
        {
            Step++;
            var pick = _random.Next(_totalWeight);
            foreach (var (weight, operation) in _operations)
            {
                if (pick < weight)
                {
                    operation();
                    break;
                }

                pick -= weight;
            }

            if (Step % CompareEvery == 0)
            {
                CompareTrees();
            }
        }

        CompareTrees();
    }

    /// <summary>Compares the two whole trees now.</summary>
    /// <exception cref="ModelMismatchException">They differ, or the system under test failed while being read.</exception>
    public void CompareTrees()
    {
        List<string> differences;
        try
        {
            differences = TreeSnapshot.Compare(_rootNames[Sut], _rootNames[Reference]);
        }
        catch (IOException e)
        {
            throw Mismatch("comparing trees: " + e.Message);
        }

        if (differences.Count > 0)
        {
            throw Mismatch($"trees differ in {differences.Count} place(s):{Environment.NewLine}    " + string.Join(Environment.NewLine + "    ", differences.Take(20)));
        }
    }

    /// <summary>Closes every descriptor kept open (on both roots), requiring the same results; needed before unmounting the system under test.</summary>
    /// <exception cref="ModelMismatchException">A close answered differently.</exception>
    public void CloseOpenFiles()
    {
        while (_open.Count > 0)
        {
            Close(_open[0]);
        }
    }

    /// <summary>Closes the kept descriptors without comparing.</summary>
    public void Dispose()
    {
        foreach (var file in _open)
        {
            _ = Sys.Close(file.Fds[Sut]);
            _ = Sys.Close(file.Fds[Reference]);
        }

        _open.Clear();
    }

    /// <summary>
    /// Runs <paramref name="action"/> on both roots and requires equal outcomes. The description's
    /// first word names the call. <paramref name="mutates"/>: false for calls that cannot change the
    /// tree, so the next draw can reuse the last scan of it.
    /// </summary>
    private void Both(string description, Func<int, Outcome> action, bool mutates = true)
    {
        var sut = action(Sut);
        var reference = action(Reference);
        _treeStale |= mutates;
        var call = description[..description.IndexOf(' ', StringComparison.Ordinal)];
        var key = $"{call}:{Sys.ErrnoName(reference.Errno)}";
        _coverage[key] = _coverage.GetValueOrDefault(key) + 1;
        if (_recent.Count == RecentCount)
        {
            _recent.Dequeue();
        }

        _recent.Enqueue($"#{Step} {description} => {reference}");
        if (sut != reference)
        {
            throw Mismatch($"{description}: SUT {sut}; reference {reference}");
        }
    }

    private ModelMismatchException Mismatch(string detail) => new(Seed, Step, detail, RecentOperations);

    private PosixPath At(int side, byte[] relative) => PosixPath.Combine(_roots[side], relative);

    /// <summary>The reference tree as of now, scanned again only after a call that may have changed it.</summary>
    private List<Node> Tree
    {
        get
        {
            if (_treeStale)
            {
                _tree = Scan();
                _treeStale = false;
            }

            return _tree;
        }
    }

    /// <summary>The reference tree, sorted by name bytes so the draw does not depend on the filesystem's listing order.</summary>
    private List<Node> Scan()
    {
        var nodes = new List<Node>();
        ScanDirectory(_roots[Reference], [], 1, nodes);
        nodes.Sort((a, b) => a.Path.AsSpan().SequenceCompareTo(b.Path));
        return nodes;
    }

    private static void ScanDirectory(PosixPath directory, byte[] relative, int depth, List<Node> nodes)
    {
        if (Sys.ReadDirectory(directory, out var entries) != 0)
        {
            return;
        }

        foreach (var entry in entries.Where(e => !e.IsDotOrDotDot))
        {
            // The scan runs before every step: d_type spares an lstat per entry where the
            // filesystem provides it (ext4 does); other types and DT_UNKNOWN ask lstat.
            var path = PosixPath.Combine(directory, entry.Name);
            var type = entry.Type switch
            {
                Sys.DT_DIR => Sys.S_IFDIR,
                Sys.DT_REG => Sys.S_IFREG,
                Sys.DT_LNK => Sys.S_IFLNK,
                _ => Sys.LStat(path, out var info) == 0 ? info.FileType : 0,
            };
            var rel = ModelNames.Join(relative, entry.Name);
            nodes.Add(new Node(rel, type, depth));
            if (type == Sys.S_IFDIR)
            {
                ScanDirectory(path, rel, depth + 1, nodes);
            }
        }
    }

    private static string Show(byte[] relative) => PosixPath.Escape(relative);

    /// <summary>What an operation returned: the errno (0 for success) and, on success, what it produced.</summary>
    private readonly record struct Outcome(int Errno, string Value)
    {
        public static Outcome Of(int errno, string value = "") => new(errno, errno == 0 ? value : "");

        public override string ToString() => Errno != 0 ? Sys.ErrnoName(Errno) : Value.Length == 0 ? "OK" : "OK " + Value;
    }

    /// <summary>An entry of the reference tree: its path, file type (S_IF*) and depth (1 is directly under the root).</summary>
    private sealed record Node(byte[] Path, uint Type, int Depth)
    {
        public bool IsFile => Type == Sys.S_IFREG;

        public bool IsDirectory => Type == Sys.S_IFDIR;

        public bool IsSymlink => Type == Sys.S_IFLNK;
    }

    /// <summary>One file opened on both roots by the same operation.</summary>
    private sealed class OpenFile(int sutFd, int referenceFd, byte[] openedAs, string flags)
    {
        public int[] Fds { get; } = [sutFd, referenceFd];

        /// <summary>The path it was opened by; it may have been renamed or unlinked since.</summary>
        public byte[] OpenedAs { get; } = openedAs;

        public string Label { get; } = $"fd({PosixPath.Escape(openedAs)} {flags})";
    }

    private static string Hash(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data))[..12];
}
