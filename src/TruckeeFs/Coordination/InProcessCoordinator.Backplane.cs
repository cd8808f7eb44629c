using System.Diagnostics;

namespace TruckeeFs.Coordination;

public sealed partial class InProcessCoordinator
{
    /// <summary>
    /// The shared state of in-process coordinators: what a Redis server is to
    /// <see cref="RedisCoordinator"/>. Strings with optional expiry (semaphores and values),
    /// per-inode states per mount, and pub/sub channels. Every operation is atomic.
    /// Threading: safe to use from many threads at once.
    /// </summary>
    public sealed class Backplane
    {
        private static readonly long SweepInterval = Stopwatch.Frequency;
        private readonly Lock _gate = new();
        private readonly Dictionary<string, Entry> _strings = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Dictionary<string, InodeStates>> _states = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<Subscription>> _channels = new(StringComparer.Ordinal);
        private long _nextSweep;

        internal bool SetIfAbsent(string key, string value, TimeSpan ttl)
        {
            lock (_gate)
            {
                if (TryGetLive(key, out _)) return false;
                Store(key, value, ttl);
                return true;
            }
        }

        internal bool ExtendIfEqual(string key, string value, TimeSpan ttl)
        {
            lock (_gate)
            {
                if (!TryGetLive(key, out var entry) || entry.Value != value) return false;
                Store(key, value, ttl);
                return true;
            }
        }

        internal bool DeleteIfEqual(string key, string value)
        {
            lock (_gate) return TryGetLive(key, out var entry) && entry.Value == value && _strings.Remove(key);
        }

        internal void Set(string key, string value, TimeSpan? ttl)
        {
            lock (_gate) Store(key, value, ttl);
        }

        internal string? Get(string key)
        {
            lock (_gate) return TryGetLive(key, out var entry) ? entry.Value : null;
        }

        internal bool Delete(string key)
        {
            lock (_gate) return TryGetLive(key, out _) && _strings.Remove(key);
        }

        internal void SetStates(string key, string mountId, InodeStates states, bool on)
        {
            lock (_gate)
            {
                if (!_states.TryGetValue(key, out var byMount))
                {
                    if (!on) return;
                    _states[key] = byMount = new Dictionary<string, InodeStates>(StringComparer.Ordinal);
                }
                var current = byMount.GetValueOrDefault(mountId);
                var updated = on ? current | states : current & ~states;
                if (updated != InodeStates.None) byMount[mountId] = updated;
                else byMount.Remove(mountId);
                // Like a Redis set, an inode without states takes no room.
                if (byMount.Count == 0) _states.Remove(key);
            }
        }

        /// <summary>Removes the states <paramref name="mountId"/> holds on every key starting with <paramref name="keyPrefix"/>.</summary>
        internal void ForgetMount(string keyPrefix, string mountId)
        {
            lock (_gate)
            {
                foreach (var (key, byMount) in _states.Where(p => p.Key.StartsWith(keyPrefix, StringComparison.Ordinal)).ToList())
                {
                    byMount.Remove(mountId);
                    if (byMount.Count == 0) _states.Remove(key);
                }
            }
        }

        internal InodeStates GetStates(string key)
        {
            lock (_gate)
            {
                var combined = InodeStates.None;
                if (_states.TryGetValue(key, out var byMount))
                    foreach (var states in byMount.Values) combined |= states;
                return combined;
            }
        }

        internal void DeleteByPrefix(string prefix)
        {
            lock (_gate)
            {
                foreach (var key in _strings.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList()) _strings.Remove(key);
                foreach (var key in _states.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList()) _states.Remove(key);
            }
        }

        internal void Publish(string channel, string message)
        {
            lock (_gate)
            {
                if (!_channels.TryGetValue(channel, out var subscriptions)) return;
                foreach (var subscription in subscriptions) subscription.Enqueue(message);
            }
        }

        internal IAsyncDisposable Subscribe(string channel, Action<string> handler)
        {
            var subscription = new Subscription(this, channel, handler);
            lock (_gate)
            {
                if (!_channels.TryGetValue(channel, out var subscriptions)) _channels[channel] = subscriptions = [];
                subscriptions.Add(subscription);
            }
            return subscription;
        }

        private void Unsubscribe(Subscription subscription)
        {
            lock (_gate)
            {
                if (!_channels.TryGetValue(subscription.Name, out var subscriptions)) return;
                subscriptions.Remove(subscription);
                if (subscriptions.Count == 0) _channels.Remove(subscription.Name);
            }
        }

        private bool TryGetLive(string key, out Entry entry)
        {
            if (!_strings.TryGetValue(key, out entry)) return false;
            if (Stopwatch.GetTimestamp() < entry.ExpiresAt) return true;
            _strings.Remove(key);
            return false;
        }

        private void Store(string key, string value, TimeSpan? ttl)
        {
            var now = Stopwatch.GetTimestamp();
            _strings[key] = new Entry(value, ttl is { } t ? now + (long)(t.TotalSeconds * Stopwatch.Frequency) : long.MaxValue);
            // Expired entries nobody reads again would stay forever; drop them now and then.
            if (now < _nextSweep) return;
            _nextSweep = now + SweepInterval;
            foreach (var expired in _strings.Where(e => e.Value.ExpiresAt <= now).Select(e => e.Key).ToList()) _strings.Remove(expired);
        }

        private readonly record struct Entry(string Value, long ExpiresAt);

        /// <summary>One handler on one channel.</summary>
        private sealed class Subscription(Backplane backplane, string name, Action<string> handler) : IAsyncDisposable
        {
            private readonly OrderedDelivery _delivery = new(handler);

            public string Name => name;

            public void Enqueue(string message) => _delivery.Post(message);

            public ValueTask DisposeAsync()
            {
                _delivery.Stop();
                backplane.Unsubscribe(this);
                return ValueTask.CompletedTask;
            }
        }
    }
}
