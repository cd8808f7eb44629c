using TruckeeFs.Meta;

namespace TruckeeFs.Cache;

/// <summary>
/// Commits file versions to metadata in groups: one transaction, and so one durable write on
/// the database server, for every file whose commit is ready at about the same time. A server
/// spends most of a small file's commit on the transaction itself (on MariaDB, a commit waits
/// for the disk), so a storm of small files (untar, cp -r, a build) costs a fraction of it per
/// file.
///
/// The first commit of a group waits up to <paramref name="window"/> for others to join, unless
/// the group is full or a caller waits for it (fsync, an unmount's drain): background commits
/// are invisible to the writer, which has been answered already, so a few milliseconds more
/// cost nobody anything. Commits that arrive while a group is being written form the next one.
/// A failed transaction fails every commit of its group; each is retried by its owner.
/// Threading: every member is safe to call from many threads at once.
/// </summary>
internal sealed class CommitGroup(IMetaStore meta, ContentCollector collector, TimeSpan window)
{
    /// <summary>Files committed in one transaction at most: bounds the transaction's statements and locks.</summary>
    public const int MaxFiles = 64;

    /// <summary>How long the first commit of a group waits for others: about what one transaction takes on MariaDB, a few times over.</summary>
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromMilliseconds(10);

    private readonly Lock _lock = new();
    private readonly List<Pending> _waiting = [];
    private bool _leading;
    private TaskCompletionSource _hurry = NewSignal();

    /// <summary>
    /// Commits a file's version (see <see cref="IMetaStore.CommitContents"/>) with the group that
    /// forms around it: the inode's row as the commit left it, or null if the inode is gone.
    /// An <paramref name="urgent"/> commit starts its group at once. Throws what the metadata
    /// store threw for the group.
    /// </summary>
    public Task<Inode?> CommitAsync(long inode, ContentCommit commit, bool urgent)
    {
        var pending = new Pending(inode, commit, urgent, Environment.TickCount64);
        bool lead;
        lock (_lock)
        {
            _waiting.Add(pending);
            if (urgent || _waiting.Count >= MaxFiles) _hurry.TrySetResult();
            lead = !_leading;
            _leading = true;
        }
        // The first caller leads: on its own thread, so an urgent commit costs no thread hop.
        if (lead) _ = LeadAsync();
        return pending.Result.Task;
    }

    /// <summary>Starts the group now gathering without waiting out its window (someone waits for one of its files).</summary>
    public void Hurry()
    {
        lock (_lock) _hurry.TrySetResult();
    }

    /// <summary>Writes group after group until nobody waits.</summary>
    private async Task LeadAsync()
    {
        while (true)
        {
            Task hurry;
            long firstArrived;
            lock (_lock)
            {
                hurry = _hurry.Task;
                firstArrived = _waiting[0].Arrived;
            }
            var left = window - TimeSpan.FromMilliseconds(Environment.TickCount64 - firstArrived);
            if (!hurry.IsCompleted && left > TimeSpan.Zero) await Task.WhenAny(hurry, Task.Delay(left)).ConfigureAwait(false);

            var group = TakeGroup();
            Write(group);
            lock (_lock)
            {
                if (_waiting.Count == 0)
                {
                    _leading = false;
                    return;
                }
            }
        }
    }

    /// <summary>The next group: the oldest waiting commits, each file once, at most <see cref="MaxFiles"/>.</summary>
    private List<Pending> TakeGroup()
    {
        lock (_lock)
        {
            var group = new List<Pending>();
            var files = new HashSet<long>();
            foreach (var pending in _waiting)
            {
                if (group.Count == MaxFiles) break;
                if (files.Add(pending.Inode)) group.Add(pending);
            }
            foreach (var pending in group) _waiting.Remove(pending);
            // What stays behind waits for its own window, unless it is urgent or a full group.
            if (_hurry.Task.IsCompleted && !_waiting.Any(p => p.Urgent) && _waiting.Count < MaxFiles) _hurry = NewSignal();
            return group;
        }
    }

    private void Write(List<Pending> group)
    {
        IReadOnlyList<Inode?> rows;
        try
        {
            rows = meta.CommitContents([.. group.Select(p => (p.Inode, p.Commit))], out var unreferenced);
            collector.Discard(unreferenced);
        }
        catch (Exception e)
        {
            foreach (var pending in group) pending.Result.TrySetException(e);
            return;
        }
        for (var i = 0; i < group.Count; i++) group[i].Result.TrySetResult(rows[i]);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed record Pending(long Inode, ContentCommit Commit, bool Urgent, long Arrived)
    {
        /// <summary>Completed off the leader's thread, so that one file's follow-up work does not delay the next group.</summary>
        public TaskCompletionSource<Inode?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
