using System.Diagnostics;
using System.Globalization;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// One run of a server binary: launched, polled until it answers, stopped gracefully or killed.
/// Keeps the last lines the server printed for error messages.
/// </summary>
internal sealed class ServerProcess
{
    private const int TailLines = 40;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(25);

    private readonly string _binary;
    private readonly IReadOnlyList<string> _arguments;
    private readonly string _workingDirectory;
    private readonly int _port;
    private readonly Queue<string> _output = new();
    private Process? _process;
    private int _pid;

    public ServerProcess(string binary, IReadOnlyList<string> arguments, string workingDirectory, int port)
    {
        _binary = binary;
        _arguments = arguments;
        _workingDirectory = workingDirectory;
        _port = port;
    }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>
    /// Launches the server and returns once <paramref name="isReady"/> says it answers; throws a
    /// <see cref="ServerStartException"/> naming the binary, port and output if it exits or does
    /// not answer in time. <paramref name="isReady"/> may throw while the server warms up.
    /// </summary>
    public void Start(Func<bool> isReady)
    {
        _process?.Dispose();
        _process = ProcessLauncher.Start(_binary, _arguments, _workingDirectory, Remember);
        Volatile.Write(ref _pid, _process.Id);
        var clock = Stopwatch.StartNew();
        string lastProbe = "no answer yet";
        while (true)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // drains the output pipes
                throw Failure($"it exited with code {_process.ExitCode}");
            }
            try
            {
                if (isReady()) return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Any failure to talk to a starting server only means "not yet"; the last one is
                // kept for the message should it never answer.
                lastProbe = e.Message;
            }
            if (clock.Elapsed > ReadyTimeout)
            {
                Kill();
                throw Failure($"it did not answer within {ReadyTimeout.TotalSeconds} s (last probe: {lastProbe})");
            }
            Thread.Sleep(PollInterval);
        }
    }

    /// <summary>Asks the server to shut down (SIGTERM) and waits; kills it if it takes too long.</summary>
    public void Stop()
    {
        if (_process is null || _process.HasExited) return;
        Libc.Kill(_process.Id, Libc.SigTerm);
        // A frozen server would hold the SIGTERM until resumed.
        Libc.Kill(_process.Id, Libc.SigCont);
        if (!_process.WaitForExit(StopTimeout)) _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>Sends <paramref name="signal"/> to the running server.</summary>
    public void Signal(int signal)
    {
        if (_process is null || _process.HasExited) throw new InvalidOperationException("The server is not running.");
        Libc.Kill(_process.Id, signal);
    }

    /// <summary>
    /// Waits until every thread of the server is stopped by a SIGSTOP sent to it. The signal
    /// stops the process only once the thread the kernel chose for it runs, which then stops
    /// the others: on a busy machine a thread can still answer a request meanwhile.
    /// </summary>
    public void WaitUntilStopped()
    {
        var pid = Volatile.Read(ref _pid);
        var clock = Stopwatch.StartNew();
        while (!Directory.EnumerateDirectories($"/proc/{pid}/task").All(IsStopped))
        {
            if (clock.Elapsed > StopTimeout) throw new TimeoutException($"{Path.GetFileName(_binary)} {pid} did not stop within {StopTimeout.TotalSeconds} s of SIGSTOP");
            Thread.Sleep(PollInterval);
        }
    }

    private static bool IsStopped(string task)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            return stat[stat.LastIndexOf(')') + 2] is 'T' or 't';
        }
        catch (IOException)
        {
            return true; // the thread ended
        }
    }

    /// <summary>
    /// SIGKILL by the pid noted at start, without <see cref="Process"/> (see
    /// <see cref="LoopbackServer.KillAtExit"/>); only if that pid still runs this server.
    /// </summary>
    public void KillAtExit()
    {
        var pid = Volatile.Read(ref _pid);
        if (pid != 0) ServerDirectories.KillIfServing(pid, _workingDirectory);
    }

    /// <summary>Kills the server at once (SIGKILL), as a crash or power loss would.</summary>
    public void Kill()
    {
        if (_process is null || _process.HasExited) return;
        _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>The error for a failed start: which binary, which port, what it said.</summary>
    private ServerStartException Failure(string reason)
    {
        string tail;
        lock (_output) tail = string.Join('\n', _output);
        return new ServerStartException(string.Create(CultureInfo.InvariantCulture,
            $"{Path.GetFileName(_binary)} did not start on 127.0.0.1:{_port}: {reason}.\n" +
            $"Command: {ProcessLauncher.Describe(_binary, _arguments)}\n" +
            $"Last output:\n{(tail.Length == 0 ? "(none)" : tail)}"));
    }

    private void Remember(string line)
    {
        lock (_output)
        {
            _output.Enqueue(line);
            if (_output.Count > TailLines) _output.Dequeue();
        }
    }
}
