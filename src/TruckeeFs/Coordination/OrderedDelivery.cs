using System.Threading.Channels;

namespace TruckeeFs.Coordination;

/// <summary>
/// Hands one subscription's messages to its handler in order, on a task of its own: a slow
/// handler then delays only its own subscription, and never runs on a thread that publishers or
/// the Redis client need (nor while the in-process backplane holds its lock).
/// A handler that throws loses that message only; delivery goes on.
/// </summary>
internal sealed class OrderedDelivery
{
    private readonly Action<string> _handler;
    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private volatile bool _stopped;

    public OrderedDelivery(Action<string> handler)
    {
        _handler = handler;
        _ = Task.Run(DeliverAsync);
    }

    public void Post(string message) => _queue.Writer.TryWrite(message);

    /// <summary>No handler call starts after this returns; one already running (perhaps the caller itself) is not waited for.</summary>
    public void Stop()
    {
        _stopped = true;
        _queue.Writer.TryComplete();
    }

    private async Task DeliverAsync()
    {
        await foreach (var message in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (_stopped) return;
            try
            {
                _handler(message);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The subscriber's bug: it must not end delivery of the messages after this one.
            }
        }
    }
}
