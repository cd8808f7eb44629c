using System.Diagnostics;
using TruckeeFs.Testing.Mounting;

namespace TruckeeFs.Tests.Production;

/// <summary>Runs the real <c>truckeefs</c> executable to completion, for commands that do not mount.</summary>
internal static class TruckeeFsCli
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Exit status, standard output and standard error of <c>truckeefs ARGUMENTS</c>.</summary>
    /// <param name="environment">Extra environment variables (XDG_DATA_HOME always points at a fresh folder).</param>
    public static async Task<(int Status, string Output, string Error)> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(TruckeeFsMountOptions.DefaultExecutable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        var home = Directory.CreateTempSubdirectory("truckeefs-xdg-").FullName;
        start.Environment["XDG_DATA_HOME"] = home;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        try
        {
            using var process = Process.Start(start)!;
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(Timeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                Assert.Fail($"truckeefs {string.Join(' ', arguments)} did not exit within {Timeout.TotalSeconds} s");
            }
            return (process.ExitCode, await output, await error);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}
