namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// A system call that may block (a lock that waits), made on a thread of its own so the test
/// can check whether, and when, it returns.
/// </summary>
internal sealed class BlockingCall
{
    private readonly ManualResetEventSlim _done = new();
    private int _result;

    public BlockingCall(Func<int> call)
    {
        var thread = new Thread(() =>
        {
            _result = call();
            _done.Set();
        }) { IsBackground = true };
        thread.Start();
    }

    /// <summary>Whether the call returned within <paramref name="timeout"/>.</summary>
    public bool Returns(TimeSpan timeout) => _done.Wait(timeout);

    /// <summary>What the call returned (an errno); only once <see cref="Returns"/> said it did.</summary>
    public int Result => _done.IsSet ? _result : throw new InvalidOperationException("the call has not returned");
}
