using System.Collections.Concurrent;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// Every test server still running, so that the test process stops them (and removes their
/// folders) when it exits, including the shared ones no test disposes.
/// </summary>
internal static class ServerRegistry
{
    private static readonly ConcurrentDictionary<LoopbackServer, byte> Live = new();
    private static int _hooked;

    public static void Track(LoopbackServer server)
    {
        if (Interlocked.Exchange(ref _hooked, 1) == 0)
            AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAll();
        Live.TryAdd(server, 0);
    }

    public static void Untrack(LoopbackServer server) => Live.TryRemove(server, out _);

    private static void StopAll()
    {
        foreach (var server in Live.Keys)
        {
            // Exit must go on for the other servers whatever one of them does.
            try { server.Destroy(); }
            catch (IOException) { }
            catch (InvalidOperationException) { }
        }
    }
}
