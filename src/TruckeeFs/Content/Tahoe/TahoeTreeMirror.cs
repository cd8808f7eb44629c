using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using TruckeeFs.Meta;

namespace TruckeeFs.Content.Tahoe;

/// <summary>
/// MIRROR mode on Tahoe-LAFS: the filesystem's tree is kept as Tahoe directories under the
/// rootcap, the filesystem's root being the rootcap directory itself, so <c>tahoe ls ROOTCAP:</c>
/// lists the filesystem's root.
///
/// Files: an empty file is the empty literal cap; a file stored in one block (index 0, as long
/// as the file) is linked as that block's immutable cap, so it is an ordinary Tahoe file that
/// <c>tahoe get</c> reads whole, with no extra upload; a longer file is a new Tahoe directory
/// whose children <c>0</c>, <c>1</c>, ... are its blocks' caps (each <c>block_size</c> bytes but
/// the last; a missing number is a hole of zeros). Re-assembling large files into one Tahoe
/// file would mean downloading and uploading every byte again on each change.
///
/// Names: Tahoe names are Unicode in NFC and strip surrounding whitespace, while ours are
/// bytes. A name that is UTF-8 and surely in NFC is used as it is, except that <c>%</c>,
/// control characters and leading or trailing whitespace are written as <c>%XX</c> of their
/// bytes; any other name (not UTF-8, or with combining marks) has every byte outside printable
/// ASCII written as <c>%XX</c>. Distinct names therefore stay distinct.
///
/// The work runs on one background task, in call order; see <see cref="ITreeMirror"/>. A mount
/// gives the mirror a marker file in its cache directory: present from the start until the
/// mirror stops with every update applied, so that finding it at the next start means updates
/// were lost (<see cref="NeedsResync"/>).
/// </summary>
public sealed partial class TahoeTreeMirror : ITreeMirror
{
    private const string ExchangePrefix = ".truckeefs-exchange-";
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);

    // Characters with NFC_Quick_Check=No (Unicode's DerivedNormalizationProps), in slightly wider ranges.
    private static readonly (int First, int Last)[] NotNfcRanges =
    [
        (0x0340, 0x0344), (0x0374, 0x0374), (0x037E, 0x037E), (0x0387, 0x0387), (0x0958, 0x095F), (0x09DC, 0x09DF),
        (0x0A33, 0x0A36), (0x0A59, 0x0A5E), (0x0B5C, 0x0B5D), (0x0F43, 0x0FB9), (0x1100, 0x11FF), (0x1F71, 0x1FFD),
        (0x2000, 0x2001), (0x2126, 0x2126), (0x212A, 0x212B), (0x2329, 0x232A), (0x2ADC, 0x2ADC), (0xA960, 0xA97F),
        (0xD7B0, 0xD7FF), (0xF900, 0xFAFF), (0xFB1D, 0xFB4E), (0x1D15E, 0x1D1C0), (0x2F800, 0x2FA1F),
    ];

    private readonly TahoeClient _client;
    private readonly string _rootCap;
    private readonly ILogger _log;
    private readonly TimeSpan _maxBackoff;
    private readonly TimeSpan _disposeTimeout;
    private readonly string? _uncleanStopMarker;
    private readonly LinkedList<Step> _queue = new();
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _work = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _worker;
    private long _retries;
    private long _dropped;
    private int _disposed;
    private bool _stopped;
    private volatile bool _needsResync;

    /// <param name="client">The gateway client (shared with the content store; not disposed here).</param>
    /// <param name="rootCap">A writable directory cap: the mirror of the filesystem's root.</param>
    /// <param name="log">Where failures and recoveries are reported.</param>
    /// <param name="maxBackoff">The longest wait between retries of a failing operation.</param>
    /// <param name="disposeTimeout">How long disposal waits for queued work before giving it up.</param>
    /// <param name="uncleanStopMarker">
    /// A mount's marker file (see the class summary), made here if missing; null for a mirror
    /// that is not a mount's (an operations verb), which then never needs a resync.
    /// </param>
    public TahoeTreeMirror(TahoeClient client, string rootCap, ILogger log, TimeSpan? maxBackoff = null, TimeSpan? disposeTimeout = null, string? uncleanStopMarker = null)
    {
        _client = client;
        _rootCap = rootCap;
        _log = log;
        _maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(30);
        _disposeTimeout = disposeTimeout ?? TimeSpan.FromSeconds(60);
        _uncleanStopMarker = uncleanStopMarker;
        if (uncleanStopMarker is not null)
        {
            _needsResync = File.Exists(uncleanStopMarker);
            if (!_needsResync) CreateMarker(uncleanStopMarker);
        }
        _worker = Task.Run(RunAsync);
    }

    public bool IsEnabled => true;

    public string Description => $"tahoe directories under the rootcap at {_client.GatewayUrl}";

    /// <summary>Operations queued and not yet applied or given up.</summary>
    public int Pending
    {
        get { lock (_gate) return _queue.Count(s => s is not Barrier); }
    }

    /// <summary>How many times an operation failed transiently and was tried again.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Operations the gateway refused, logged and dropped.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public bool NeedsResync => _needsResync;

    public void DirectoryCreated(TreePath path)
    {
        if (!path.IsRoot) Enqueue(new MakeDirectory(path));
    }

    public void FileWritten(TreePath path, long size, IReadOnlyList<BlockRef> blocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        if (path.IsRoot) throw new ArgumentException("the root is a directory", nameof(path));
        var write = new WriteFile(path, size, [.. blocks]);
        lock (_gate)
        {
            if (_stopped)
            {
                Log.NotRunning(_log, write.ToString());
                return;
            }
            // Contents written again before the last version went out: only the newest matters.
            if (_queue.Last is { Value: WriteFile queued } last && queued.Path.Equals(path)) _queue.Remove(last);
            _queue.AddLast(write);
        }
        _work.Release();
    }

    public void Renamed(TreePath from, TreePath to)
    {
        if (from.Equals(to)) return;
        Enqueue(new Move(from, to, ClearTargetIfSourceMissing: true));
    }

    public void Exchanged(TreePath first, TreePath second)
    {
        if (first.Equals(second)) return;
        // Tahoe cannot swap two names atomically: park the first under a temporary name. A name
        // missing from the mirror (a symlink, say) moves nothing, which leaves the other name empty.
        var parked = first.Parent.Child(Encoding.ASCII.GetBytes(ExchangePrefix + Guid.NewGuid().ToString("N")));
        Enqueue(new Move(first, parked, ClearTargetIfSourceMissing: false));
        Enqueue(new Move(second, first, ClearTargetIfSourceMissing: false));
        Enqueue(new Move(parked, second, ClearTargetIfSourceMissing: false));
    }

    public void Removed(TreePath path)
    {
        if (!path.IsRoot) Enqueue(new Remove(path));
    }

    public Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var barrier = new Barrier(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Enqueue(barrier);
        return barrier.Done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Applies what is queued (for up to the dispose timeout), then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        var applied = true;
        try
        {
            await FlushAsync().WaitAsync(_disposeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            applied = false;
            Log.GaveUp(_log, Pending, _disposeTimeout.TotalSeconds);
        }
        // Anything not applied (given up, refused, or a resync still owed) leaves the marker for the next mount.
        if (_uncleanStopMarker is not null && applied && Dropped == 0 && !_needsResync) File.Delete(_uncleanStopMarker);
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _worker.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped while waiting: what was left is reported above.
        }
        lock (_gate)
        {
            _stopped = true;
            foreach (var barrier in _queue.OfType<Barrier>()) barrier.Done.TrySetResult();
            _queue.Clear();
        }
        // _work stays undisposed: a late caller may still Release it, which is harmless.
        _stop.Dispose();
    }

    /// <summary>The Tahoe child name for a name of ours (see the class summary).</summary>
    internal static string EncodeName(ReadOnlySpan<byte> name)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(name);
        }
        catch (DecoderFallbackException)
        {
            return EscapeAllButPrintableAscii(name);
        }
        if (!IsSurelyNfc(text)) return EscapeAllButPrintableAscii(name);
        var start = 0;
        while (start < text.Length && IsStripped(text[start])) start++;
        var end = text.Length;
        while (end > start && IsStripped(text[end - 1])) end--;
        var encoded = new StringBuilder(text.Length + 8);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (i < start || i >= end || c == '%' || char.IsControl(c))
            {
                // Whitespace and control characters are single UTF-16 units, never surrogates.
                foreach (var b in Encoding.UTF8.GetBytes(c.ToString())) AppendEscape(encoded, b);
            }
            else
            {
                encoded.Append(c);
            }
        }
        return encoded.ToString();
    }

    /// <summary>The Tahoe path (names joined by '/') of <paramref name="path"/> under the rootcap.</summary>
    internal static string EncodePath(TreePath path) => string.Join('/', path.Names.Select(n => EncodeName(n)));

    /// <summary>
    /// True when NFC leaves <paramref name="text"/> as it is, judged without normalization
    /// tables (the build runs in invariant globalization mode, where string.Normalize does not
    /// compose): no combining marks or conjoining jamo (which compose with what precedes them),
    /// no unassigned code points, and none of the characters Unicode lists as never appearing
    /// in NFC (NFC_Quick_Check=No), taken here in slightly wider ranges. False only costs
    /// readability: the name is then escaped more.
    /// </summary>
    private static bool IsSurelyNfc(string text)
    {
        foreach (var rune in text.EnumerateRunes())
        {
            var value = rune.Value;
            if (value < 0x80) continue;
            if (Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                or UnicodeCategory.EnclosingMark or UnicodeCategory.OtherNotAssigned)
                return false;
            foreach (var (first, last) in NotNfcRanges)
                if (value >= first && value <= last) return false;
        }
        return true;
    }

    // Python's str.strip(), which Tahoe applies to names, strips these and more control characters.
    private static bool IsStripped(char c) => char.IsWhiteSpace(c) || char.IsControl(c);

    private static string EscapeAllButPrintableAscii(ReadOnlySpan<byte> name)
    {
        var encoded = new StringBuilder(name.Length * 3);
        for (var i = 0; i < name.Length; i++)
        {
            var b = name[i];
            // Leading and trailing spaces would be stripped by Tahoe.
            var edge = b == (byte)' ' && (i == 0 || i == name.Length - 1);
            if (b is < 0x21 or > 0x7E || b == (byte)'%' || edge) AppendEscape(encoded, b);
            else encoded.Append((char)b);
        }
        return encoded.ToString();
    }

    private static void AppendEscape(StringBuilder builder, byte b) => builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));

    private void Enqueue(Step step)
    {
        lock (_gate)
        {
            if (_stopped)
            {
                if (step is Barrier stopped) stopped.Done.TrySetResult();
                else Log.NotRunning(_log, step.ToString()!);
                return;
            }
            _queue.AddLast(step);
        }
        _work.Release();
    }

    private async Task RunAsync()
    {
        var token = _stop.Token;
        while (true)
        {
            await _work.WaitAsync(token).ConfigureAwait(false);
            Step step;
            lock (_gate)
            {
                if (_queue.First is not { } first) continue;
                step = first.Value;
                _queue.RemoveFirst();
            }
            if (step is Barrier barrier)
            {
                barrier.Done.TrySetResult();
                continue;
            }
            await ApplyWithRetriesAsync(step, token).ConfigureAwait(false);
        }
    }

    private async Task ApplyWithRetriesAsync(Step step, CancellationToken cancellationToken)
    {
        var backoff = FirstBackoff;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ApplyAsync(step, firstAttempt: attempt == 1, cancellationToken).ConfigureAwait(false);
                if (attempt > 1) Log.Recovered(_log, step.ToString()!, attempt);
                return;
            }
            catch (TahoeRequestException e)
            {
                Interlocked.Increment(ref _dropped);
                Log.Refused(_log, step.ToString()!, e.Message);
                return;
            }
            catch (ContentStoreException e)
            {
                Interlocked.Increment(ref _retries);
                if (attempt == 1) Log.Failing(_log, step.ToString()!, e.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A bug must not stop the worker: the operations after this one still apply.
                Interlocked.Increment(ref _dropped);
                Log.Crashed(_log, step.ToString()!, e);
                return;
            }
            await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _maxBackoff.Ticks));
        }
    }

    private async Task ApplyAsync(Step step, bool firstAttempt, CancellationToken cancellationToken)
    {
        switch (step)
        {
            case MakeDirectory make:
                try
                {
                    await _client.MkdirAsync(_rootCap, EncodePath(make.Path), cancellationToken).ConfigureAwait(false);
                }
                catch (TahoeRequestException e) when (e.Status == HttpStatusCode.BadRequest)
                {
                    // A file of that name, left by an operation that was refused: the directory wins, as in the metadata.
                    await UnlinkIfPresentAsync(make.Path, cancellationToken).ConfigureAwait(false);
                    await _client.MkdirAsync(_rootCap, EncodePath(make.Path), cancellationToken).ConfigureAwait(false);
                }
                break;
            case WriteFile write:
                var cap = await FileCapAsync(write.Size, write.Blocks, cancellationToken).ConfigureAwait(false);
                await _client.LinkAsync(_rootCap, EncodePath(write.Path), cap, replace: true, cancellationToken).ConfigureAwait(false);
                break;
            case Move move:
                await MoveAsync(move, firstAttempt, cancellationToken).ConfigureAwait(false);
                break;
            case Remove remove:
                // A retry may find it already gone: the earlier attempt reached the gateway.
                await UnlinkIfPresentAsync(remove.Path, cancellationToken).ConfigureAwait(false);
                break;
            default:
                throw new InvalidOperationException($"unknown mirror step {step}");
        }
    }

    private async Task MoveAsync(Move move, bool firstAttempt, CancellationToken cancellationToken)
    {
        var fromDirectory = await DirectoryCapAsync(move.From.Parent, cancellationToken).ConfigureAwait(false);
        var toDirectory = await DirectoryCapAsync(move.To.Parent, cancellationToken).ConfigureAwait(false);
        try
        {
            await _client.RelinkAsync(fromDirectory, EncodeName(move.From.Name), toDirectory, EncodeName(move.To.Name), replace: true, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (TahoeRequestException e) when (e.Status == HttpStatusCode.NotFound)
        {
            // On a first attempt a missing source was never mirrored (a symlink, say): the
            // target's old contents are replaced by nothing the mirror holds. On a retry the
            // earlier attempt may have moved it already, so nothing more is done.
            if (firstAttempt && move.ClearTargetIfSourceMissing) await UnlinkIfPresentAsync(move.To, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The cap of the mirrored directory at <paramref name="path"/>, made (with its parents) if missing.</summary>
    private async Task<string> DirectoryCapAsync(TreePath path, CancellationToken cancellationToken) =>
        path.IsRoot ? _rootCap : await _client.MkdirAsync(_rootCap, EncodePath(path), cancellationToken).ConfigureAwait(false);

    private async Task UnlinkIfPresentAsync(TreePath path, CancellationToken cancellationToken)
    {
        try
        {
            await _client.UnlinkAsync(_rootCap, EncodePath(path), cancellationToken).ConfigureAwait(false);
        }
        catch (TahoeRequestException e) when (e.Status == HttpStatusCode.NotFound)
        {
            // Already gone.
        }
    }

    /// <summary>The cap that represents a file's contents (see the class summary), making a directory of its blocks when it needs one.</summary>
    private async Task<string> FileCapAsync(long size, IReadOnlyList<BlockRef> blocks, CancellationToken cancellationToken)
    {
        if (SingleFileCap(size, blocks) is { } single) return single;
        var directory = await _client.CreateDirectoryAsync(cancellationToken).ConfigureAwait(false);
        foreach (var (name, cap) in BlockChildren(blocks))
            await _client.LinkAsync(directory, name, cap, replace: true, cancellationToken).ConfigureAwait(false);
        return directory;
    }

    /// <summary>The cap a file is linked as when it is one Tahoe file (empty, or one block as long as the file); null when it is a directory of its blocks.</summary>
    private static string? SingleFileCap(long size, IReadOnlyList<BlockRef> blocks)
    {
        if (size == 0) return TahoeCaps.LiteralCap([]);
        var stored = blocks.Where(b => b.Cap is not null).ToList();
        return stored is [{ Index: 0, Cap: { } only } block] && block.Length == size ? only : null;
    }

    /// <summary>The children of a file's block directory: each stored block's cap under its number (holes have none).</summary>
    private static Dictionary<string, string> BlockChildren(IReadOnlyList<BlockRef> blocks) =>
        blocks.Where(b => b.Cap is not null).ToDictionary(b => b.Index.ToString(CultureInfo.InvariantCulture), b => b.Cap!, StringComparer.Ordinal);

    /// <summary>Makes the marker durable before any update can be applied: a power loss must not forget it.</summary>
    private static void CreateMarker(string path)
    {
        using (var marker = new FileStream(path, FileMode.Create, FileAccess.Write)) marker.Flush(flushToDisk: true);
        _ = Posix.SyncDirectory(Path.GetDirectoryName(path)!);
    }

    private abstract record Step;

    private sealed record MakeDirectory(TreePath Path) : Step
    {
        public override string ToString() => $"mkdir {Path}";
    }

    private sealed record WriteFile(TreePath Path, long Size, BlockRef[] Blocks) : Step
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"write {Path} ({Size} bytes)");
    }

    private sealed record Move(TreePath From, TreePath To, bool ClearTargetIfSourceMissing) : Step
    {
        public override string ToString() => $"rename {From} to {To}";
    }

    private sealed record Remove(TreePath Path) : Step
    {
        public override string ToString() => $"remove {Path}";
    }

    private sealed record Barrier(TaskCompletionSource Done) : Step;

    private static partial class Log
    {
        [LoggerMessage(4001, LogLevel.Warning, "MIRROR: {Operation} failed ({Reason}); retrying until it succeeds")]
        public static partial void Failing(ILogger logger, string operation, string reason);

        [LoggerMessage(4002, LogLevel.Information, "MIRROR: {Operation} succeeded after {Attempts} attempts")]
        public static partial void Recovered(ILogger logger, string operation, int attempts);

        [LoggerMessage(4003, LogLevel.Warning, "MIRROR: Tahoe refused {Operation} ({Reason}); the mirror may differ from the filesystem there")]
        public static partial void Refused(ILogger logger, string operation, string reason);

        [LoggerMessage(4004, LogLevel.Warning, "MIRROR: stopping with {Count} operations not applied after waiting {Seconds} s")]
        public static partial void GaveUp(ILogger logger, int count, double seconds);

        [LoggerMessage(4005, LogLevel.Error, "MIRROR: {Operation} failed unexpectedly; skipped")]
        public static partial void Crashed(ILogger logger, string operation, Exception exception);

        [LoggerMessage(4006, LogLevel.Warning, "MIRROR: {Operation} after the mirror stopped; not applied")]
        public static partial void NotRunning(ILogger logger, string operation);
    }
}
