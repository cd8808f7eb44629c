using System.Net;
using System.Net.Sockets;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// A real server started from its Debian binary for tests: bound to 127.0.0.1 on a free port, with
/// its data in a temporary folder. <see cref="Stop"/> and <see cref="Start"/> take it down and
/// bring it back on the same port and data, so a test can cause an outage under a live client;
/// <see cref="Freeze"/> and <see cref="Thaw"/> make it hang and recover;
/// <see cref="Dispose"/> kills it and deletes the folder. Servers never outlive the test process.
///
/// The <c>Shared</c> instance of each kind serves a whole test run (tests isolate themselves by
/// database or key prefix) and refuses Stop, Start, Freeze, Thaw and Dispose; tests that cause outages start
/// their own with <c>StartNew</c>.
/// Threading: members may be called from any thread; Stop, Start, Freeze, Thaw and Dispose are serialized.
/// </summary>
public abstract class LoopbackServer : IDisposable
{
    private const int PortAttempts = 3;

    private readonly Lock _gate = new();
    private readonly bool _isShared;
    private ServerProcess? _process;
    private bool _destroyed;

    /// <summary>
    /// Test code drives servers synchronously (starting them, polling them, MySql.Data's
    /// blocking calls) and xunit runs tests on thread-pool threads, while Redis replies and
    /// every async continuation need pool threads to make progress. The pool adds threads
    /// only about twice a second beyond its minimum (the core count), so a few blocked tests
    /// stalled Redis replies past their timeouts. Headroom for the whole test process fixes that.
    /// </summary>
    static LoopbackServer()
    {
        const int TestThreads = 64;
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        if (workers < TestThreads) ThreadPool.SetMinThreads(TestThreads, completionPorts);
    }

    private protected LoopbackServer(string kind, bool isShared)
    {
        _isShared = isShared;
        WorkingDirectory = ServerDirectories.Create(kind);
        ServerRegistry.Track(this);
    }

    /// <summary>Always 127.0.0.1: test servers listen on loopback only.</summary>
    public string Host => "127.0.0.1";

    public int Port { get; private set; }

    /// <summary>The temporary folder holding the server's data, socket and pid file.</summary>
    public string WorkingDirectory { get; }

    public bool IsRunning
    {
        get { lock (_gate) return _process?.IsRunning == true; }
    }

    /// <summary>Shuts the server down gracefully, keeping its data for <see cref="Start"/>.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            RefuseIfShared(nameof(Stop));
            ObjectDisposedException.ThrowIf(_destroyed, this);
            _process?.Stop();
        }
    }

    /// <summary>Starts the stopped server again on the same port with the same data; waits until it answers.</summary>
    public void Start()
    {
        lock (_gate)
        {
            RefuseIfShared(nameof(Start));
            ObjectDisposedException.ThrowIf(_destroyed, this);
            if (_process is null || _process.IsRunning) throw new InvalidOperationException("The server is running; Stop it first.");
            _process.Start(IsReady);
        }
    }

    /// <summary>
    /// Suspends the server (SIGSTOP): its connections stay open but nothing is answered, as
    /// with a hung or cut-off host, so a test can see its client's timeouts. Returns once every
    /// thread of the server has stopped. <see cref="Thaw"/> resumes it.
    /// </summary>
    public void Freeze() => Signal(nameof(Freeze), Libc.SigStop).WaitUntilStopped();

    /// <summary>Resumes a server suspended by <see cref="Freeze"/>.</summary>
    public void Thaw() => Signal(nameof(Thaw), Libc.SigCont);

    /// <summary>Kills the server and deletes its folder.</summary>
    public void Dispose()
    {
        RefuseIfShared(nameof(Dispose));
        Destroy();
        GC.SuppressFinalize(this);
    }

    /// <summary>Builds the command line that runs the server on <paramref name="port"/>.</summary>
    private protected abstract ServerProcess CreateProcess(int port);

    /// <summary>Whether the server answers requests; may throw while it starts.</summary>
    private protected abstract bool IsReady();

    /// <summary>
    /// Starts the server the first time, on <paramref name="port"/>, or on a free port when it
    /// is 0. A free port can be taken by someone else between choosing and binding it, so a
    /// start that fails while the chosen port is busy is retried on another one.
    /// </summary>
    private protected void Launch(int port)
    {
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                Port = port != 0 ? port : FreePort();
                var process = CreateProcess(Port);
                try
                {
                    process.Start(IsReady);
                    lock (_gate) Volatile.Write(ref _process, process);
                    return;
                }
                catch (ServerStartException) when (port == 0 && attempt < PortAttempts && IsBusy(Port))
                {
                    // Lost the race for the port; try another.
                }
            }
        }
        catch
        {
            Destroy();
            throw;
        }
    }

    /// <summary>
    /// At process exit: sends SIGKILL without waiting, taking no lock (a test may be stuck
    /// holding it) and using no <see cref="System.Diagnostics.Process"/> member (they can block
    /// while the runtime shuts down).
    /// </summary>
    internal void KillAtExit() => Volatile.Read(ref _process)?.KillAtExit();

    /// <summary>Kills the server and deletes its folder, shared or not.</summary>
    internal void Destroy()
    {
        lock (_gate)
        {
            if (_destroyed) return;
            _destroyed = true;
            _process?.Kill();
            ServerDirectories.Delete(WorkingDirectory);
            ServerRegistry.Untrack(this);
        }
    }

    /// <summary>Sends <paramref name="signal"/> to the running server; returns its process.</summary>
    private ServerProcess Signal(string operation, int signal)
    {
        lock (_gate)
        {
            RefuseIfShared(operation);
            ObjectDisposedException.ThrowIf(_destroyed, this);
            if (_process is null) throw new InvalidOperationException("The server is not running.");
            _process.Signal(signal);
            return _process;
        }
    }

    private void RefuseIfShared(string operation)
    {
        if (_isShared)
            throw new InvalidOperationException($"{operation} is not allowed on a shared server: every test uses it at once. Start a dedicated one with StartNew().");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsBusy(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }
}
