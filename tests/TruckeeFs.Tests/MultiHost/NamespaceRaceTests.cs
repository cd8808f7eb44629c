using TruckeeFs.Testing.Model;
using TruckeeFs.Testing.Posix;
using static TruckeeFs.Tests.MultiHost.MountCluster;

namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// Two mounts racing to make or take one name: exactly one wins and the other gets the errno a
/// single host would give; nothing is lost or doubled, and crossing directory moves never
/// detach a cycle from the tree.
/// </summary>
public sealed class NamespaceRaceTests : IAsyncLifetime
{
    private const int Rounds = 25;
    private const uint RenameNoReplace = 1;

    private MountCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await MountCluster.StartAsync();

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public void Racing_creations_of_one_name_have_exactly_one_winner()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        for (var i = 0; i < Rounds; i++)
        {
            var dir = $"m{i}";
            AssertOneWins(Race(() => Sys.Mkdir(On(a, dir), 0x1ED), () => Sys.Mkdir(On(b, dir), 0x1ED)), Sys.EEXIST, $"mkdir {dir}");

            var exclusive = $"x{i}";
            var fds = new int[2];
            var created = Race(
                () => Sys.Open(On(a, exclusive), Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY, 0x1A4, out fds[0]),
                () => Sys.Open(On(b, exclusive), Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY, 0x1A4, out fds[1]));
            AssertOneWins(created, Sys.EEXIST, $"O_EXCL {exclusive}");
            Sys.Close(created.A == 0 ? fds[0] : fds[1]);

            // Without O_EXCL both open the same file, whoever created it.
            var shared = $"c{i}";
            var both = Race(
                () => Sys.Open(On(a, shared), Sys.O_CREAT | Sys.O_WRONLY, 0x1A4, out fds[0]),
                () => Sys.Open(On(b, shared), Sys.O_CREAT | Sys.O_WRONLY, 0x1A4, out fds[1]));
            Assert.Equal((0, 0), both);
            Assert.Equal(0, Sys.FStat(fds[0], out var first));
            Assert.Equal(0, Sys.FStat(fds[1], out var second));
            Assert.Equal(first.Ino, second.Ino);
            Sys.Close(fds[0]);
            Sys.Close(fds[1]);

            WriteFile(On(a, $"src{i}"), "s");
            AssertOneWins(Race(() => Sys.Link(On(a, $"src{i}"), On(a, $"l{i}")), () => Sys.Link(On(b, $"src{i}"), On(b, $"l{i}"))), Sys.EEXIST, $"link l{i}");

            WriteFile(On(a, $"r{i}a"), "from a");
            WriteFile(On(a, $"r{i}b"), "from b");
            Eventually(() => Sys.Stat(On(b, $"r{i}b"), out _) == 0, "B sees r{i}b");
            var renamed = Race(
                () => Sys.RenameAt2(On(a, $"r{i}a"), On(a, $"t{i}"), RenameNoReplace),
                () => Sys.RenameAt2(On(b, $"r{i}b"), On(b, $"t{i}"), RenameNoReplace));
            AssertOneWins(renamed, Sys.EEXIST, $"rename to t{i}");
            Assert.Equal(renamed.A == 0 ? "from a" : "from b", ReadFile(On(b, $"t{i}")));
        }
        AssertSameTree();
        Assert.Equal(0, _cluster.Filesystem.Count("SELECT COUNT(*) FROM (SELECT parent, name FROM dirents GROUP BY parent, name HAVING COUNT(*) > 1) AS doubled"));
    }

    [Fact]
    public void Crossing_directory_moves_never_make_a_cycle()
    {
        var (a, b) = (_cluster.A, _cluster.B);
        var winners = 0;
        for (var i = 0; i < Rounds; i++)
        {
            // x/a/sub and y/b/sub; A moves a into b/sub while B moves b into a/sub.
            foreach (var path in (string[])[$"x{i}", $"x{i}/a", $"x{i}/a/sub", $"y{i}", $"y{i}/b", $"y{i}/b/sub"])
                Assert.Equal(0, Sys.Mkdir(On(a, path), 0x1ED));
            Eventually(() => Sys.Stat(On(b, $"y{i}/b/sub"), out _) == 0 && Sys.Stat(On(b, $"x{i}/a/sub"), out _) == 0, "B sees both trees");
            var moved = Race(
                () => Sys.Rename(On(a, $"x{i}/a"), On(a, $"y{i}/b/sub/a")),
                () => Sys.Rename(On(b, $"y{i}/b"), On(b, $"x{i}/a/sub/b")));
            Assert.NotEqual((0, 0), moved);
            Assert.All((int[])[moved.A, moved.B], r => Assert.Contains(r, (int[])[0, Sys.EINVAL, Sys.ENOENT]));
            if (moved.A == 0 || moved.B == 0) winners++;
        }
        Assert.True(winners > 0, "some move should have succeeded");
        // Every directory is reachable from the root: a cycle would cut its members off.
        var directories = _cluster.Filesystem.Count("SELECT COUNT(*) FROM inodes WHERE mode & 61440 = 16384 AND nlink > 0");
        Assert.Equal(directories, CountDirectories(_cluster.A.Path) + 1);
        AssertSameTree();
    }

    /// <summary>Both mounts list the same tree (once invalidations have arrived).</summary>
    private void AssertSameTree()
    {
        List<string> differences = [];
        Eventually(() => (differences = TreeSnapshot.Compare(_cluster.A.Path, _cluster.B.Path)).Count == 0,
            () => "the mounts list the same tree: " + string.Join("; ", differences.Take(5)));
    }

    private static long CountDirectories(string path) =>
        Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).LongCount();

    private static void AssertOneWins((int A, int B) results, int loserErrno, string what)
    {
        var sorted = new[] { results.A, results.B }.Order().ToArray();
        Assert.True(sorted[0] == 0 && sorted[1] == loserErrno, $"{what}: {Sys.ErrnoName(results.A)} on A, {Sys.ErrnoName(results.B)} on B");
    }

    /// <summary>Runs the two calls at the same moment on two threads.</summary>
    private static (int A, int B) Race(Func<int> onA, Func<int> onB)
    {
        using var start = new Barrier(2);
        int resultA = 0, resultB = 0;
        var threadB = new Thread(() =>
        {
            start.SignalAndWait();
            resultB = onB();
        });
        threadB.Start();
        start.SignalAndWait();
        resultA = onA();
        threadB.Join();
        return (resultA, resultB);
    }
}
