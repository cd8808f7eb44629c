using System.Collections.Concurrent;
using System.Text;
using TruckeeFs.Testing.Model;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;
using static TruckeeFs.Tests.MultiHost.MountCluster;

namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// Writers on two mounts at once, for a fixed number of operations each: appending records to
/// shared journals under flock and under fcntl (open-file-description) locks, and creating,
/// renaming and removing files and directories in one shared directory. At the end every record
/// is in its journal exactly once and both mounts list the same tree, with every name the
/// writers left where it should be.
/// </summary>
public sealed class StressTests : IAsyncLifetime
{
    private const int WritersPerMount = 2;
    private const int Operations = 40;

    private MountCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await MountCluster.StartAsync();

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Writers_on_two_mounts_lose_and_double_nothing()
    {
        WriteFile(On(_cluster.A, "journal.lock"), "");
        WriteFile(On(_cluster.A, "flock-journal"), "");
        WriteFile(On(_cluster.A, "fcntl-journal"), "");
        Assert.Equal(0, Sys.Mkdir(On(_cluster.A, "shared"), 0x1ED));
        Eventually(() => Sys.Stat(On(_cluster.B, "shared"), out _) == 0, "B sees the shared directory");

        var failures = new ConcurrentQueue<string>();
        var survivors = new ConcurrentDictionary<string, byte>();
        var writers = Enumerable.Range(0, 2 * WritersPerMount).Select(id => new Thread(() =>
        {
            try
            {
                Write(id, id % 2 == 0 ? _cluster.A.Path : _cluster.B.Path, survivors);
            }
            catch (Exception e)
            {
                failures.Enqueue($"writer {id}: {e.Message}");
            }
        }) { IsBackground = true }).ToList();
        writers.ForEach(w => w.Start());
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        Assert.All(writers, w => Assert.True(w.Join(deadline - DateTime.UtcNow), $"a writer is still busy after 4 minutes; so far: {string.Join("; ", failures)}"));
        Assert.Empty(failures);

        foreach (var (journal, parity) in (ValueTuple<string, int>[])[("flock-journal", 0), ("fcntl-journal", 1)])
        {
            var expected = Enumerable.Range(0, 2 * WritersPerMount)
                .SelectMany(id => Enumerable.Range(0, Operations).Where(op => op % 2 == parity).Select(op => $"w{id}-{op}"))
                .Order(StringComparer.Ordinal).ToList();
            foreach (var mount in _cluster.Mounts)
            {
                List<string> records = [];
                Eventually(() => (records = Records(On(mount, journal))).SequenceEqual(expected),
                    () => $"{journal} through {mount.Path} holds every record once: {records.Count} records, " +
                        $"missing {string.Join(",", expected.Except(records).Take(5))}, doubled {string.Join(",", records.GroupBy(r => r).Where(g => g.Count() > 1).Select(g => g.Key).Take(5))}");
            }
        }

        List<string> differences = [];
        Eventually(() => (differences = TreeSnapshot.Compare(_cluster.A.Path, _cluster.B.Path)).Count == 0,
            () => "both mounts list the same tree: " + string.Join("; ", differences.Take(5)));
        var names = Directory.EnumerateFileSystemEntries(On(_cluster.A, "shared")).Select(Path.GetFileName).Where(n => n!.StartsWith('k')).Order(StringComparer.Ordinal);
        Assert.Equal(survivors.Keys.Order(StringComparer.Ordinal), names);
        Assert.Equal(0, _cluster.Filesystem.Count("SELECT COUNT(*) FROM locks"));

        // Unmounted everywhere, the metadata is consistent: fsck finds nothing.
        foreach (var mount in _cluster.Mounts) Assert.Equal(0, await mount.UnmountAsync());
        var fs = _cluster.Filesystem;
        var (status, output, error) = await TruckeeFsCli.RunAsync(fs.Secrets().ToDictionary(p => p.Key, p => p.Value!), ["fsck", .. fs.Arguments()]);
        Assert.True(status == 0, $"fsck exited {status}: {output}{error}");
    }

    /// <summary>One writer: each operation appends a record to one journal (alternately) and changes names in the shared directory.</summary>
    private static void Write(int id, string root, ConcurrentDictionary<string, byte> survivors)
    {
        var lockPath = Path.Combine(root, "journal.lock");
        Check(Sys.Open(lockPath, Sys.O_RDWR, out var lockFd), "open journal.lock");
        try
        {
            for (var op = 0; op < Operations; op++)
            {
                var record = Encoding.ASCII.GetBytes($"w{id}-{op}\n");
                if (op % 2 == 0)
                {
                    Check(Sys.Flock(lockFd, Sys.LOCK_EX), "flock");
                    Append(Path.Combine(root, "flock-journal"), record);
                    Check(Sys.Flock(lockFd, Sys.LOCK_UN), "unflock");
                }
                else
                {
                    // Locks of an open file description: threads of this one process must exclude each other.
                    Check(Sys.Open(Path.Combine(root, "fcntl-journal"), Sys.O_WRONLY | Sys.O_APPEND, out var fd), "open fcntl-journal");
                    var whole = FileLock.Range(Sys.F_WRLCK, 0, 0);
                    Check(Sys.FcntlLock(fd, Sys.F_OFD_SETLKW, ref whole), "F_OFD_SETLKW");
                    Check(Sys.Write(fd, record, out _), "append");
                    Check(Sys.Close(fd), "close fcntl-journal");
                }
                ChangeNames(id, op, Path.Combine(root, "shared"), survivors);
            }
        }
        finally
        {
            Sys.Close(lockFd);
        }
    }

    private static void Append(string path, byte[] record)
    {
        Check(Sys.Open(path, Sys.O_WRONLY | Sys.O_APPEND, out var fd), "open flock-journal");
        Check(Sys.Write(fd, record, out _), "append");
        Check(Sys.Close(fd), "close flock-journal");
    }

    /// <summary>
    /// Own names (k…) are created, renamed and every third removed: their fate is known. Shared
    /// directory names (s0…s3) are made and removed by everyone at once: any of the errnos a
    /// single host could give is fine, the mounts just have to agree in the end.
    /// </summary>
    private static void ChangeNames(int id, int op, string shared, ConcurrentDictionary<string, byte> survivors)
    {
        var created = Path.Combine(shared, $"new-{id}-{op}");
        Check(Sys.Open(created, Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY, 0x1A4, out var fd), "create");
        Check(Sys.Close(fd), "close created");
        var kept = $"k{id}-{op}";
        Check(Sys.Rename(created, Path.Combine(shared, kept)), "rename");
        if (op % 3 == 0) Check(Sys.Unlink(Path.Combine(shared, kept)), "unlink");
        else survivors[kept] = 0;

        var contested = Path.Combine(shared, $"s{op % 4}");
        var made = Sys.Mkdir(contested, 0x1ED);
        if (made is not (0 or Sys.EEXIST)) throw new InvalidOperationException($"mkdir {contested}: {Sys.ErrnoName(made)}");
        var removed = Sys.Rmdir(contested);
        if (removed is not (0 or Sys.ENOENT)) throw new InvalidOperationException($"rmdir {contested}: {Sys.ErrnoName(removed)}");
    }

    private static List<string> Records(string path) =>
        [.. (ReadFile(path) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];

    private static void Check(int errno, string what)
    {
        if (errno != 0) throw new InvalidOperationException($"{what}: {Sys.ErrnoName(errno)}");
    }
}
