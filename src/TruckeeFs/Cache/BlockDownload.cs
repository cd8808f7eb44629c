using Microsoft.Win32.SafeHandles;
using TruckeeFs.Content;
using TruckeeFs.Vfs;

namespace TruckeeFs.Cache;

/// <summary>
/// One block coming from the content store into the cache, shared by all its readers; each
/// waits only until the bytes it asks for have been written.
///
/// The block is streamed whole, not fetched in the pieces readers ask for: a request costs a
/// round trip (tens to hundreds of milliseconds on Tahoe) while the rest of a block streams in
/// a few more, and the next reads of the block then find it cached. When the first read needs
/// bytes deep inside the block, waiting for everything before them would cost more than one
/// more request, so two ranged streams run at once instead: from there (rounded down to Tahoe's
/// 128 KiB segment) to the block's end, and the head before it.
///
/// The bytes go to a part file that becomes the cache's block file only once complete.
/// </summary>
internal sealed class BlockDownload
{
    private const long SegmentSize = 128 << 10;
    private readonly IContentStore _store;
    private readonly VfsStatistics _statistics;
    private readonly string _finalPath;
    private readonly string _partPath;
    private readonly SafeFileHandle _part;
    private readonly Run[] _runs;
    private readonly Lock _lock = new();
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string _path;
    private bool _complete;
    private Exception? _failure;

    public BlockDownload(IContentStore store, string cap, long length, string path, long firstNeeded, VfsStatistics statistics)
    {
        _store = store;
        _statistics = statistics;
        Cap = cap;
        Length = length;
        _finalPath = path;
        _partPath = _path = $"{path}.{Guid.NewGuid():N}.part";
        _part = File.OpenHandle(_partPath, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        var split = Math.Clamp(firstNeeded / SegmentSize * SegmentSize, 0, length);
        _runs = split == 0 ? [new Run(0, length)] : [new Run(split, length), new Run(0, split)];
    }

    public string Cap { get; }

    public long Length { get; }

    /// <summary>A reader of this block, valid whether the download is still running or done.</summary>
    public BlockReader OpenReader()
    {
        lock (_lock)
        {
            if (_failure is not null) throw Failed();
            return new BlockReader(BlockCache.OpenRead(_path), this);
        }
    }

    /// <summary>Returns once bytes [<paramref name="from"/>, <paramref name="to"/>) are in the file; throws if the download failed.</summary>
    public async ValueTask WaitAsync(long from, long to)
    {
        to = Math.Min(to, Length);
        while (true)
        {
            Task progress;
            lock (_lock)
            {
                if (_complete || Covered(from, to)) return;
                if (_failure is not null) throw Failed();
                progress = _progress.Task;
            }
            await progress.ConfigureAwait(false);
        }
    }

    /// <summary>Downloads the block; true once it is complete under its cache name, false if it failed.</summary>
    public async Task<bool> RunAsync()
    {
        try
        {
            await Task.WhenAll(_runs.Select(FetchAsync)).ConfigureAwait(false);
            _part.Dispose();
            lock (_lock)
            {
                File.Move(_partPath, _finalPath, overwrite: true);
                _path = _finalPath;
                _complete = true;
                Signal();
            }
            return true;
        }
        catch (Exception e)
        {
            _part.Dispose();
            lock (_lock)
            {
                _failure = e;
                File.Delete(_partPath);
                Signal();
            }
            return false;
        }
    }

    private async Task FetchAsync(Run run)
    {
        var wanted = run.To - run.From;
        var got = await _store.StreamAsync(Cap, run.From, wanted, (data, _) =>
        {
            // A write to the page cache takes microseconds: cheaper in place than through the thread pool.
            RandomAccess.Write(_part, data.Span, run.From + run.Done);
            _statistics.Downloaded(data.Length);
            lock (_lock)
            {
                run.Done += data.Length;
                Signal();
            }
            return ValueTask.CompletedTask;
        }).ConfigureAwait(false);
        if (got < wanted)
            throw new ContentStoreException($"{_store.Description}: object {Cap} ends at {run.From + got}, but its block map records {Length} bytes");
    }

    /// <summary>Whether the runs together have delivered every byte of [from, to). Called under the lock.</summary>
    private bool Covered(long from, long to)
    {
        var reached = from;
        for (var advanced = true; reached < to && advanced;)
        {
            advanced = false;
            foreach (var run in _runs)
            {
                if (run.From <= reached && reached < run.From + run.Done)
                {
                    reached = run.From + run.Done;
                    advanced = true;
                }
            }
        }
        return reached >= to;
    }

    /// <summary>Wakes every waiter to look again. Called under the lock.</summary>
    private void Signal()
    {
        _progress.TrySetResult();
        _progress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private ContentStoreException Failed() =>
        _failure as ContentNotFoundException as ContentStoreException
        ?? new ContentStoreException($"downloading {Cap} from {_store.Description} failed: {_failure!.Message}", _failure);

    private sealed class Run(long from, long to)
    {
        public long From { get; } = from;
        public long To { get; } = to;
        public long Done { get; set; }
    }
}
