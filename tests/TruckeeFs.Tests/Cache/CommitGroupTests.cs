using System.Reflection;
using TruckeeFs.Cache;
using TruckeeFs.Content;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Cache;

/// <summary>Group commits on a real embedded metadata store, watched through a proxy that records (or fails) each group's transaction.</summary>
public sealed class CommitGroupTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromHours(1);
    private readonly string _directory = Directory.CreateTempSubdirectory("truckeefs-group-").FullName;
    private readonly IMetaStore _store;
    private readonly GroupRecorder _recorder;
    private readonly IMetaStore _watched;
    private long _clock = 1_000;

    public CommitGroupTests()
    {
        _store = new SqlMetaStore(new SqliteDialect(Path.Combine(_directory, "m.db")), 1, 0, 0);
        _watched = DispatchProxy.Create<IMetaStore, GroupRecorder>();
        _recorder = (GroupRecorder)_watched;
        _recorder.Target = _store;
    }

    public void Dispose()
    {
        _store.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Commits_that_arrive_within_the_window_share_one_transaction()
    {
        var group = NewGroup(TimeSpan.FromMilliseconds(300));
        var files = Files(5);

        var commits = files.Select((f, i) => group.CommitAsync(f, Version(i + 1), urgent: false)).ToList();
        var rows = await Task.WhenAll(commits).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([files], _recorder.Groups);
        Assert.Equal(files, rows.Select(r => r!.Id));
        Assert.Equal([1L, 2, 3, 4, 5], rows.Select(r => r!.Size));
        Assert.All(files.Zip(rows), p => Assert.Equal(p.Second!.Size, _store.GetInode(p.First)!.Size));
    }

    [Fact]
    public async Task An_urgent_commit_starts_its_group_at_once_and_takes_the_waiting_ones_along()
    {
        var group = NewGroup(Long);
        var files = Files(4);
        var background = files.Take(3).Select(f => group.CommitAsync(f, Version(7), urgent: false)).ToList();
        await Task.Delay(200);
        Assert.All(background, t => Assert.False(t.IsCompleted));

        var urgent = group.CommitAsync(files[3], Version(9), urgent: true);

        await Task.WhenAll([.. background, urgent]).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([files], _recorder.Groups);
        Assert.Equal(9, (await urgent)!.Size);
    }

    [Fact]
    public async Task Hurry_starts_the_gathering_group()
    {
        var group = NewGroup(Long);
        var file = Files(1)[0];
        var commit = group.CommitAsync(file, Version(3), urgent: false);
        await Task.Delay(100);
        Assert.False(commit.IsCompleted);

        group.Hurry();

        Assert.Equal(3, (await commit.WaitAsync(TimeSpan.FromSeconds(10)))!.Size);
    }

    [Fact]
    public async Task A_gone_file_gets_null_and_the_others_of_its_group_land()
    {
        var group = NewGroup(TimeSpan.FromMilliseconds(100));
        var files = Files(2);

        var rows = await Task.WhenAll(
            group.CommitAsync(files[0], Version(5), urgent: false),
            group.CommitAsync(files[1] + 1000, Version(5), urgent: false),
            group.CommitAsync(files[1], Version(6), urgent: false)).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Single(_recorder.Groups);
        Assert.Equal([5L, -1, 6], rows.Select(r => r?.Size ?? -1));
    }

    [Fact]
    public async Task A_failed_transaction_fails_every_commit_of_its_group_and_leaves_the_next_group_alone()
    {
        var group = NewGroup(TimeSpan.FromMilliseconds(100));
        var files = Files(3);
        _recorder.Failure = new MetaStoreException("metadata database (test) is down");

        var failing = files.Take(2).Select(f => group.CommitAsync(f, Version(1), urgent: false)).ToList();
        foreach (var commit in failing)
        {
            var error = await Assert.ThrowsAsync<MetaStoreException>(() => commit.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Contains("is down", error.Message, StringComparison.Ordinal);
        }
        _recorder.Failure = null;

        Assert.Equal(2, (await group.CommitAsync(files[2], Version(2), urgent: true).WaitAsync(TimeSpan.FromSeconds(10)))!.Size);
        Assert.All(files.Take(2), f => Assert.Equal(0, _store.GetInode(f)!.Version));
        Assert.Equal(2, _recorder.Groups.Count);
    }

    [Fact]
    public async Task A_file_waiting_twice_commits_in_two_groups_in_the_order_it_came()
    {
        var group = NewGroup(Long);
        var files = Files(2);

        var first = group.CommitAsync(files[0], Version(1), urgent: false);
        var other = group.CommitAsync(files[1], Version(1), urgent: false);
        var second = group.CommitAsync(files[0], Version(2), urgent: true);
        await Task.WhenAll(first, other, second).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([[files[0], files[1]], [files[0]]], _recorder.Groups);
        Assert.Equal(2, _store.GetInode(files[0])!.Size);
        Assert.Equal(2, _store.GetInode(files[0])!.Version);
    }

    [Fact]
    public async Task A_full_group_goes_without_waiting_out_the_window()
    {
        var group = NewGroup(Long);
        var files = Files(CommitGroup.MaxFiles + 1);

        var full = files.Take(CommitGroup.MaxFiles).Select(f => group.CommitAsync(f, Version(1), urgent: false)).ToList();
        await Task.WhenAll(full).WaitAsync(TimeSpan.FromSeconds(10));
        var last = group.CommitAsync(files[^1], Version(1), urgent: false);
        await Task.Delay(100);

        Assert.Equal([files.Take(CommitGroup.MaxFiles).ToList()], _recorder.Groups);
        Assert.False(last.IsCompleted);
        group.Hurry();
        await last.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private CommitGroup NewGroup(TimeSpan window) => new(_watched, new ContentCollector(new LocalContentStore(Path.Combine(_directory, "store")), _store), window);

    private List<long> Files(int count) => [.. Enumerable.Range(0, count).Select(i =>
    {
        Assert.Equal(0, _store.Create(Schema.RootInode, System.Text.Encoding.ASCII.GetBytes($"f{_clock}"), new NewNode(FileModes.Regular | 0x1A4, 0, 0), _clock++, out var file));
        return file.Id;
    })];

    /// <summary>A one-block version of <paramref name="size"/> bytes.</summary>
    private ContentCommit Version(long size) => new([new BlockRef(0, $"cap-{size}", size)], size, _clock, _clock++);

    /// <summary>Forwards every call to <see cref="Target"/>; records the files of each group commit, and throws <see cref="Failure"/> instead of committing while it is set.</summary>
    public class GroupRecorder : DispatchProxy
    {
        public IMetaStore? Target { get; set; }

        public Exception? Failure { get; set; }

        public List<List<long>> Groups { get; } = [];

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod!.Name == nameof(IMetaStore.CommitContents))
            {
                lock (Groups) Groups.Add([.. ((IReadOnlyList<(long Inode, ContentCommit Commit)>)args![0]!).Select(c => c.Inode)]);
                if (Failure is { } failure) throw failure;
            }
            try
            {
                return targetMethod.Invoke(Target, args);
            }
            catch (TargetInvocationException e)
            {
                throw e.InnerException!;
            }
        }
    }
}
