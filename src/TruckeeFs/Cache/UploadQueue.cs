using System.Threading.Channels;

namespace TruckeeFs.Cache;

/// <summary>
/// Commits sealed file versions in the background, after the close that sealed them returned.
/// At most one entry per file: a file closed again while it waits is not queued twice, and one
/// closed again while its commit runs is committed once more afterwards (with its newest
/// version), so repeated close cycles coalesce into few uploads. A commit that fails (content
/// store down) is retried with exponential backoff, the data staying staged meanwhile; nothing
/// is dropped. <see cref="DrainAsync"/> (a clean unmount) commits what is left, trying each
/// file once more; what still fails stays staged and journaled for the next mount.
///
/// The queue holds a file's content from its first queuing until it has nothing left to
/// commit: <paramref name="pin"/> and <paramref name="unpin"/> tell the owner, which keeps the
/// content alive (and serves reads and attributes from it) meanwhile.
/// Threading: every member is safe to call from many threads at once.
/// </summary>
/// <param name="commit">Commits a file's newest sealed version; throws on failure (it is retried).</param>
/// <param name="failed">Told of each failed attempt and the delay before the next.</param>
internal sealed class UploadQueue(
    Func<FileContent, Task> commit, Action<FileContent> pin, Action<FileContent> unpin, Action<FileContent, Exception, TimeSpan> failed)
{
    /// <summary>Files committed at once; each also uploads several blocks at once.</summary>
    private const int Workers = 4;
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Entry> _entries = [];
    private readonly Channel<Entry> _ready = Channel.CreateUnbounded<Entry>();
    private readonly CancellationTokenSource _stopping = new();
    private Task[]? _workers;

    /// <summary>Files waiting for or in a commit.</summary>
    public int Count
    {
        get
        {
            lock (_lock) return _entries.Count;
        }
    }

    /// <summary>Queues the file's newest sealed version for commit, unless it is queued already.</summary>
    public void Enqueue(FileContent content)
    {
        lock (_lock)
        {
            _workers ??= [.. Enumerable.Range(0, Workers).Select(_ => Task.Run(WorkAsync))];
            if (!_entries.TryGetValue(content.Inode, out var entry))
            {
                _entries[content.Inode] = entry = new Entry(content);
                pin(content);
            }
            if (entry.Queued) return;
            entry.Queued = true;
            // A running or retrying entry is taken up again when that attempt ends.
            if (!entry.Running && !entry.Waiting) _ready.Writer.TryWrite(entry);
        }
    }

    /// <summary>
    /// Stops the background work and commits every queued file once more, in turn. Returns the
    /// number of files left staged because their commit failed again.
    /// </summary>
    public async Task<int> DrainAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _ready.Writer.TryComplete();
        Task[] workers;
        lock (_lock) workers = _workers ?? [];
        await Task.WhenAll(workers).ConfigureAwait(false);
        List<Entry> left;
        lock (_lock) left = [.. _entries.Values];
        var failures = 0;
        foreach (var entry in left)
        {
            try
            {
                await commit(entry.Content).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                failures++;
                failed(entry.Content, e, TimeSpan.Zero);
                continue;
            }
            lock (_lock) _entries.Remove(entry.Content.Inode);
            unpin(entry.Content);
        }
        return failures;
    }

    private async Task WorkAsync()
    {
        try
        {
            await foreach (var entry in _ready.Reader.ReadAllAsync(_stopping.Token).ConfigureAwait(false))
                await RunAsync(entry).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Draining: what is left is committed by DrainAsync.
        }
    }

    private async Task RunAsync(Entry entry)
    {
        lock (_lock)
        {
            entry.Queued = false;
            entry.Running = true;
        }
        Exception? failure = null;
        try
        {
            await commit(entry.Content).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }
        var done = false;
        lock (_lock)
        {
            entry.Running = false;
            if (failure is null)
            {
                entry.Backoff = TimeSpan.Zero;
                if (entry.Queued || entry.Content.HasSealed)
                {
                    entry.Queued = true;
                    _ready.Writer.TryWrite(entry);
                }
                else
                {
                    _entries.Remove(entry.Content.Inode);
                    done = true;
                }
            }
            else
            {
                entry.Backoff = entry.Backoff == TimeSpan.Zero ? FirstRetry : TimeSpan.FromTicks(Math.Min(entry.Backoff.Ticks * 2, LastRetry.Ticks));
                entry.Queued = true;
                entry.Waiting = true;
            }
        }
        if (done) unpin(entry.Content);
        if (failure is not null)
        {
            failed(entry.Content, failure, entry.Backoff);
            _ = RetryLaterAsync(entry);
        }
    }

    private async Task RetryLaterAsync(Entry entry)
    {
        try
        {
            await Task.Delay(entry.Backoff, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Draining: DrainAsync retries it.
            return;
        }
        lock (_lock)
        {
            entry.Waiting = false;
            _ready.Writer.TryWrite(entry);
        }
    }

    private sealed class Entry(FileContent content)
    {
        public FileContent Content { get; } = content;

        /// <summary>Waiting in the ready channel (or to be put there when the running or waiting attempt ends).</summary>
        public bool Queued;

        /// <summary>A commit attempt runs.</summary>
        public bool Running;

        /// <summary>Waiting out a backoff after a failure.</summary>
        public bool Waiting;

        public TimeSpan Backoff;
    }
}
