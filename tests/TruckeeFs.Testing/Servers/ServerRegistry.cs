using System.Collections.Concurrent;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// Every test server not yet disposed, so that the test process kills them when it exits,
/// including the shared ones no test disposes.
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

    /// <summary>
    /// The test runner kills its host a few milliseconds after the run, so exit only signals
    /// (the servers would die with this process anyway, see <see cref="ProcessLauncher"/>); the
    /// folders are left to the janitor (see <see cref="ServerDirectories"/>).
    /// </summary>
    private static void StopAll()
    {
        foreach (var server in Live.Keys) server.KillAtExit();
    }
}
