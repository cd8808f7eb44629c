using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>-d/--background</c>. .NET cannot fork, so the command starts itself again (without the
/// flag, with <see cref="ChildMarker"/> in its environment) and relays what the child says on
/// standard error. The child leaves the terminal's session at once and, once its mount answers,
/// says <see cref="ReadyLine"/> and lets go of the pipes; the parent then exits 0. A child that
/// exits first makes the parent exit with its status, its reason already relayed.
/// </summary>
internal static partial class Background
{
    private const string ChildMarker = "TRUCKEEFS_BACKGROUND_CHILD";
    private const string ReadyPrefix = "truckeefs: running in the background as pid ";

    /// <summary>True in the process a background start launched.</summary>
    public static bool IsChild => Environment.GetEnvironmentVariable(ChildMarker) == "1";

    /// <summary>The line the child writes once the mount answers.</summary>
    private static string ReadyLine => ReadyPrefix + Environment.ProcessId;

    /// <summary>Whether an argument asks for the background.</summary>
    public static bool IsFlag(string argument) => argument is "-d" or "--background";

    /// <summary>In the parent: starts the child with <paramref name="arguments"/> and returns once it is ready or has failed.</summary>
    public static int Launch(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments.Where(a => !IsFlag(a))) start.ArgumentList.Add(argument);
        start.Environment[ChildMarker] = "1";
        using var child = Process.Start(start)!;
        child.StandardInput.Close();
        var output = child.StandardOutput.ReadToEndAsync();
        while (child.StandardError.ReadLine() is { } line)
        {
            Console.Error.WriteLine(line);
            if (line.StartsWith(ReadyPrefix, StringComparison.Ordinal)) return 0;
        }
        child.WaitForExit();
        Console.Out.Write(output.GetAwaiter().GetResult());
        var status = child.ExitCode;
        if (status == 0) Console.Error.WriteLine("truckeefs: the background process stopped before its mount was ready");
        return status == 0 ? Program.Failure : status;
    }

    /// <summary>In the child, first thing: a session of its own, so the terminal's hang-up and Ctrl-C do not reach it.</summary>
    public static void LeaveTerminalSession() => _ = setsid();

    /// <summary>In the child, once mounted: tells the parent, then points standard input, output and error at /dev/null.</summary>
    public static void Detach()
    {
        Console.Error.WriteLine(ReadyLine);
        Console.Error.Flush();
        Console.Out.Flush();
        var devnull = open("/dev/null", 2 /* O_RDWR */);
        if (devnull < 0) return;
        for (var fd = 0; fd <= 2; fd++) _ = dup2(devnull, fd);
        _ = close(devnull);
    }

    [LibraryImport("libc")]
    private static partial int setsid();

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc")]
    private static partial int dup2(int oldfd, int newfd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
