using System.Collections.Concurrent;
using System.Diagnostics;

namespace TruckeeFs.Testing.Servers;

/// <summary>
/// Starts child processes so that they cannot outlive the test process. Each child runs under
/// util-linux's <c>setpriv --pdeathsig KILL</c>, so the kernel kills it when its parent goes away,
/// even if the test host is killed before any cleanup code runs.
///
/// The kernel sends that signal when the parent <em>thread</em> that forked the child exits, not
/// the parent process; .NET forks on the calling thread, and a thread-pool thread can retire at
/// any time. So every child is forked from one dedicated thread that lives as long as the process.
/// </summary>
internal static class ProcessLauncher
{
    private static readonly string? Setpriv = ServerBinaries.TryFind("setpriv");
    private static readonly BlockingCollection<Request> Requests = [];
    private static readonly Lazy<Thread> LauncherThread = new(StartThread);

    /// <summary>Starts <paramref name="binary"/> with <paramref name="arguments"/>; every line it prints goes to <paramref name="onOutput"/>.</summary>
    public static Process Start(string binary, IReadOnlyList<string> arguments, string workingDirectory, Action<string> onOutput)
    {
        var info = new ProcessStartInfo
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (Setpriv is null)
        {
            info.FileName = binary;
        }
        else
        {
            info.FileName = Setpriv;
            foreach (var argument in (string[])["--pdeathsig", "KILL", "--", binary]) info.ArgumentList.Add(argument);
        }
        foreach (var argument in arguments) info.ArgumentList.Add(argument);

        _ = LauncherThread.Value;
        var request = new Request(info, new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously));
        Requests.Add(request);
        var process = request.Result.Task.GetAwaiter().GetResult();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onOutput(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onOutput(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        // Servers read nothing; closing stdin keeps them from holding a pipe to us.
        process.StandardInput.Close();
        return process;
    }

    /// <summary>The command line, for error messages.</summary>
    public static string Describe(string binary, IReadOnlyList<string> arguments) =>
        string.Join(' ', arguments.Prepend(binary).Select(a => a.Length == 0 || a.Contains(' ') ? $"'{a}'" : a));

    private static Thread StartThread()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "test server launcher" };
        thread.Start();
        return thread;
    }

    private static void Run()
    {
        foreach (var request in Requests.GetConsumingEnumerable())
        {
            try { request.Result.SetResult(Process.Start(request.Info)!); }
            catch (Exception e) { request.Result.SetException(e); }
        }
    }

    private sealed record Request(ProcessStartInfo Info, TaskCompletionSource<Process> Result);
}
