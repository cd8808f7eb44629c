using System.Globalization;
using System.Net;
using StackExchange.Redis;

namespace TruckeeFs.Coordination;

/// <summary>
/// Coordination between hosts through one Redis server. Every key and channel starts with
/// <see cref="RedisOptions.KeyPrefix"/>:
/// <list type="bullet">
/// <item><c>{prefix}sem:{name}</c> a string holding the owner token, with a PX expiry;</item>
/// <item><c>{prefix}state:{inode}</c> a set of <c>{state}@{mount}</c> members, one per state each mount holds;</item>
/// <item><c>{prefix}kv:{key}</c> a string, with a PX expiry when given;</item>
/// <item><c>{prefix}{channel}</c> the pub/sub channel.</item>
/// </list>
/// The connection survives a server restart: operations during an outage fail with
/// <see cref="CoordinatorException"/> after at most <see cref="RedisOptions.OperationTimeout"/>,
/// and work again once the client has reconnected (within about a second of the server's
/// return). Redis without persistence forgets everything on restart; leases notice at their
/// next renewal and report <see cref="ISemaphoreLease.IsHeld"/> false.
/// </summary>
public sealed partial class RedisCoordinator : ICoordinator, ISemaphoreStore
{
    private static readonly (InodeStates State, string Name)[] StateNames =
        [(InodeStates.Read, "read"), (InodeStates.Write, "write"), (InodeStates.Delete, "delete"), (InodeStates.Sync, "sync")];

    private readonly ConnectionMultiplexer _connection;
    private readonly IDatabase _database;
    private readonly ISubscriber _subscriber;
    private readonly string _prefix;
    private readonly string _address;
    private readonly TimeSpan _operationTimeout;
    private readonly string _mountId = Guid.NewGuid().ToString("N");
    private readonly SemaphoreLeases _leases;
    private int _disposed;

    private RedisCoordinator(ConnectionMultiplexer connection, RedisOptions options, string address)
    {
        _connection = connection;
        _database = connection.GetDatabase(options.Database);
        _subscriber = connection.GetSubscriber();
        _prefix = options.KeyPrefix;
        _address = address;
        _operationTimeout = options.OperationTimeout;
        Description = string.Create(CultureInfo.InvariantCulture, $"redis {address}/{options.Database}");
        _leases = new SemaphoreLeases(this);
    }

    public string Description { get; }

    /// <summary>
    /// Connects to the server of <paramref name="options"/>; throws a
    /// <see cref="CoordinatorException"/> naming it if it cannot be reached within
    /// <see cref="RedisOptions.ConnectTimeout"/>.
    /// </summary>
    public static async Task<RedisCoordinator> ConnectAsync(RedisOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.KeyPrefix))
            throw new ArgumentException("A key prefix is required: without one, a reset would delete every key of the database.", nameof(options));
        var (host, port) = options.ResolveEndPoint();
        var address = host.Contains(':', StringComparison.Ordinal)
            ? string.Create(CultureInfo.InvariantCulture, $"[{host}]:{port}")
            : string.Create(CultureInfo.InvariantCulture, $"{host}:{port}");
        var configuration = new ConfigurationOptions
        {
            // Connect in the background and keep reconnecting: a client made while the server is
            // up then rides out its restarts. Whether the first connection worked is checked below.
            AbortOnConnectFail = false,
            ConnectRetry = 1,
            ConnectTimeout = Milliseconds(options.ConnectTimeout),
            SyncTimeout = Milliseconds(options.OperationTimeout),
            // Try to reconnect every second (the default waits a whole connect timeout).
            ReconnectRetryPolicy = new LinearRetry(1000),
            // Ping an idle connection every few seconds, so that a dead one is noticed.
            KeepAlive = 5,
            DefaultDatabase = options.Database,
            ClientName = "truckeefs",
        };
        configuration.EndPoints.Add(IPAddress.TryParse(host, out var ip) ? new IPEndPoint(ip, port) : new DnsEndPoint(host, port));

        var connecting = ConnectionMultiplexer.ConnectAsync(configuration);
        ConnectionMultiplexer connection;
        try
        {
            connection = await connecting.WaitAsync(options.ConnectTimeout * 2, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            _ = connecting.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            if (e is OperationCanceledException) throw;
            throw new CoordinatorException(string.Create(CultureInfo.InvariantCulture, $"Redis {address} is unreachable: no connection within {Milliseconds(options.ConnectTimeout)} ms."), e);
        }
        catch (RedisException e)
        {
            throw new CoordinatorException($"Redis {address} is unreachable: {e.Message}", e);
        }
        if (!connection.IsConnected)
        {
            connection.Dispose();
            throw new CoordinatorException(string.Create(CultureInfo.InvariantCulture,
                $"Redis {address} is unreachable: could not connect (waited up to {Milliseconds(options.ConnectTimeout)} ms)."));
        }
        return new RedisCoordinator(connection, options, address);
    }

    public ValueTask<ISemaphoreLease?> TryAcquireAsync(string name, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _leases.TryAcquireAsync(name, ttl, cancellationToken);
    }

    public ValueTask<ISemaphoreLease> AcquireAsync(string name, TimeSpan ttl, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _leases.AcquireAsync(name, ttl, wait, cancellationToken);
    }

    public async ValueTask SetStateAsync(long inode, InodeStates states, bool on, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var members = StateNames.Where(s => states.HasFlag(s.State)).Select(s => (RedisValue)$"{s.Name}@{_mountId}").ToArray();
        if (members.Length == 0) return;
        var key = StateKey(inode);
        if (on) await RunAsync(() => _database.SetAddAsync(key, members), cancellationToken).ConfigureAwait(false);
        else await RunAsync(() => _database.SetRemoveAsync(key, members), cancellationToken).ConfigureAwait(false);
    }

    public string MountId => _mountId;

    public async ValueTask ForgetMountAsync(string mountId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var pattern = EscapeGlob(StatePrefix) + "*";
        RedisValue[] members = [.. StateNames.Select(s => (RedisValue)$"{s.Name}@{mountId}")];
        var cursor = "0";
        do
        {
            var page = await RunAsync(() => _database.ScriptEvaluateAsync(Scripts.RemoveMembersPage, null, [cursor, pattern, .. members]), cancellationToken).ConfigureAwait(false);
            cursor = (string?)page ?? "0";
        }
        while (cursor != "0");
    }

    public async ValueTask<InodeStates> GetStatesAsync(long inode, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var members = await RunAsync(() => _database.SetMembersAsync(StateKey(inode)), cancellationToken).ConfigureAwait(false);
        var combined = InodeStates.None;
        foreach (var member in members)
        {
            var text = (string?)member ?? "";
            var name = text[..Math.Max(0, text.IndexOf('@', StringComparison.Ordinal))];
            // A name this version does not know (written by a newer one) is not a state it can honour.
            foreach (var (state, stateName) in StateNames)
                if (stateName == name) combined |= state;
        }
        return combined;
    }

    public async ValueTask SetValueAsync(string key, string value, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(value);
        var redisKey = ValueKey(key);
        await RunAsync(() => _database.StringSetAsync(redisKey, value, ttl), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<string?> GetValueAsync(string key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var redisKey = ValueKey(key);
        return (string?)await RunAsync(() => _database.StringGetAsync(redisKey), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> DeleteValueAsync(string key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var redisKey = ValueKey(key);
        return await RunAsync(() => _database.KeyDeleteAsync(redisKey), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask PublishAsync(string channel, string message, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(message);
        var redisChannel = Channel(channel);
        await RunAsync(() => _subscriber.PublishAsync(redisChannel, message), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IAsyncDisposable> SubscribeAsync(string channel, Action<string> handler, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(handler);
        // The queue form of a subscription delivers in the order the server sent (a handler
        // given to SubscribeAsync may be called for several messages at once, in any order).
        var queue = await RunAsync(() => _subscriber.SubscribeAsync(Channel(channel)), cancellationToken).ConfigureAwait(false);
        return new Subscription(this, queue, handler);
    }

    public async ValueTask ResetAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var pattern = EscapeGlob(_prefix) + "*";
        var cursor = "0";
        do
        {
            var page = await RunAsync(() => _database.ScriptEvaluateAsync(Scripts.DeletePage, null, [cursor, pattern]), cancellationToken).ConfigureAwait(false);
            cursor = (string?)page ?? "0";
        }
        while (cursor != "0");
    }

    /// <summary>Releases the leases still held, then closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _leases.ReleaseAllAsync().ConfigureAwait(false);
        try
        {
            await _connection.CloseAsync(allowCommandsToComplete: true).WaitAsync(_operationTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A server that does not answer cannot be told goodbye; the socket closes below.
        }
        _connection.Dispose();
    }

    async ValueTask<bool> ISemaphoreStore.TryTakeAsync(string name, string token, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var key = SemaphoreKey(name);
        Task<bool>? setting = null;
        try
        {
            return await RunAsync(() => setting = _database.StringSetAsync(key, token, ttl, When.NotExists), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (setting is not null && e is CoordinatorException or OperationCanceledException)
        {
            // The SET may still succeed after we stopped waiting; nobody would ever renew or
            // release that semaphore, so release it as soon as it is known to be ours.
            _ = setting.ContinueWith(
                t => { if (t.Result) _ = _database.ScriptEvaluateAsync(Scripts.Release, [key], [token]); },
                CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            throw;
        }
    }

    async ValueTask<bool> ISemaphoreStore.ExtendAsync(string name, string token, TimeSpan ttl)
    {
        var key = SemaphoreKey(name);
        var result = await RunAsync(() => _database.ScriptEvaluateAsync(Scripts.Extend, [key], [token, Milliseconds(ttl)]), CancellationToken.None).ConfigureAwait(false);
        return (long)result == 1;
    }

    async ValueTask<bool> ISemaphoreStore.ReleaseAsync(string name, string token)
    {
        var key = SemaphoreKey(name);
        var result = await RunAsync(() => _database.ScriptEvaluateAsync(Scripts.Release, [key], [token]), CancellationToken.None).ConfigureAwait(false);
        return (long)result == 1;
    }

    /// <summary>
    /// Runs one Redis operation within the operation timeout, turning every way Redis can fail
    /// (no connection, no answer, an error reply) into a <see cref="CoordinatorException"/>
    /// naming the server.
    /// </summary>
    private async Task<T> RunAsync<T>(Func<Task<T>> operation, CancellationToken cancellationToken)
    {
        Task<T> task;
        try
        {
            task = operation();
        }
        catch (RedisException e)
        {
            throw Failed(e);
        }
        try
        {
            // StackExchange.Redis may complete a task inline on the thread that reads its socket;
            // yielding keeps callers' continuations (which may block) from stalling every other reply.
            return await task.WaitAsync(_operationTimeout, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
        catch (TimeoutException e)
        {
            Observe(task);
            throw new CoordinatorException(string.Create(CultureInfo.InvariantCulture, $"Redis {_address} did not answer within {Milliseconds(_operationTimeout)} ms ({Backlog()})."), e);
        }
        catch (RedisException e)
        {
            throw Failed(e);
        }
        catch (OperationCanceledException)
        {
            Observe(task);
            throw;
        }
    }

    private Task<bool> RunAsync(Func<Task> operation, CancellationToken cancellationToken) =>
        RunAsync(async () => { await operation().ConfigureAwait(false); return true; }, cancellationToken);

    /// <summary>
    /// Where commands stand, for a timeout's message: commands still unsent point at this
    /// process or the connection, commands sent and unanswered at the server.
    /// </summary>
    private string Backlog()
    {
        var counters = _connection.GetCounters().Interactive;
        return string.Create(CultureInfo.InvariantCulture,
            $"{(_connection.IsConnected ? "connected" : "not connected")}; commands not yet sent {counters.PendingUnsentItems}, sent and unanswered {counters.SentItemsAwaitingResponse}, answered and not yet completed {counters.ResponsesAwaitingAsyncCompletion}");
    }

    private CoordinatorException Failed(RedisException e) => new($"Redis {_address} failed: {e.Message}", e);

    /// <summary>Keeps a failure of an operation we stopped waiting for from surfacing as an unobserved task exception.</summary>
    private static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private RedisKey SemaphoreKey(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _prefix + "sem:" + name;
    }

    private string StatePrefix => _prefix + "state:";

    private RedisKey StateKey(long inode) => StatePrefix + inode.ToString(CultureInfo.InvariantCulture);

    private RedisKey ValueKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _prefix + "kv:" + key;
    }

    /// <summary>Literal, so that a '*' in a name is not taken for a pattern subscription.</summary>
    private RedisChannel Channel(string channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        return new RedisChannel(_prefix + channel, RedisChannel.PatternMode.Literal);
    }

    /// <summary>Escapes the glob characters of SCAN's MATCH, so the prefix matches only itself.</summary>
    private static string EscapeGlob(string text) =>
        string.Concat(text.Select(c => c is '*' or '?' or '[' or ']' or '\\' ? $"\\{c}" : c.ToString()));

    private static int Milliseconds(TimeSpan span) => (int)Math.Ceiling(span.TotalMilliseconds);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>The Lua scripts: each runs atomically on the server.</summary>
    private static class Scripts
    {
        /// <summary>Resets the TTL only if the semaphore still holds our token.</summary>
        public const string Extend = """
            if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
            return 0
            """;

        /// <summary>Deletes the semaphore only if it still holds our token.</summary>
        public const string Release = """
            if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
            return 0
            """;

        /// <summary>Removes members ARGV[3..] from the sets of one page of the keys matching ARGV[2]; returns the next cursor.</summary>
        public const string RemoveMembersPage = """
            local page = redis.call('scan', ARGV[1], 'match', ARGV[2], 'count', 1000)
            for _, key in ipairs(page[2]) do
                redis.call('srem', key, unpack(ARGV, 3))
            end
            return page[1]
            """;

        /// <summary>
        /// One SCAN page of keys matching ARGV[2] from cursor ARGV[1], deleted; returns the next
        /// cursor. Paged so that no single script blocks the server for long; DEL in slices
        /// because Lua's unpack has a small stack.
        /// </summary>
        public const string DeletePage = """
            local page = redis.call('scan', ARGV[1], 'match', ARGV[2], 'count', 1000)
            local keys = page[2]
            for i = 1, #keys, 100 do
                redis.call('del', unpack(keys, i, math.min(i + 99, #keys)))
            end
            return page[1]
            """;
    }

    /// <summary>One handler on one channel; delivery stops as soon as it is disposed, even if the server cannot be told.</summary>
    private sealed class Subscription : IAsyncDisposable
    {
        private readonly RedisCoordinator _owner;
        private readonly ChannelMessageQueue _queue;
        private readonly OrderedDelivery _delivery;
        private int _disposed;

        public Subscription(RedisCoordinator owner, ChannelMessageQueue queue, Action<string> handler)
        {
            _owner = owner;
            _queue = queue;
            // Handed on at once: the handler may block, and the queue waits for each message's callback.
            _delivery = new OrderedDelivery(handler);
            queue.OnMessage(message => _delivery.Post((string?)message.Message ?? ""));
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            _delivery.Stop();
            if (Volatile.Read(ref _owner._disposed) != 0) return;
            try
            {
                await _owner.RunAsync(() => _queue.UnsubscribeAsync(), CancellationToken.None).ConfigureAwait(false);
            }
            catch (CoordinatorException)
            {
                // Delivery already stopped above; the server drops the subscription with the connection.
            }
        }
    }
}
