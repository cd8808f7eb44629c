using TruckeeFs.Config;
using TruckeeFs.Content;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs selftest [MOUNTPOINT]</c>: the compatibility and integration self-tests against
/// the configured backends, and the functionality test in MOUNTPOINT when given (a mounted
/// TruckeeFS). One PASS or FAIL line each; exit status 0 when all passed, 1 otherwise.
/// </summary>
internal static class SelftestCommand
{
    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, string? mountpoint, bool json) =>
        Verb.Run(configFile, flags, async configuration =>
        {
            var results = new List<SelfTestResult> { CompatibilityTest.Run() };
            results.AddRange(await IntegrationAsync(configuration).ConfigureAwait(false));
            if (mountpoint is not null)
            {
                var path = Path.GetFullPath(mountpoint);
                results.Add(MountCommand.IsMounted(path)
                    ? FunctionalityTest.Run(path)
                    : new SelfTestResult("functionality", false, $"{path} is not a mount point: give the path of a mounted TruckeeFS"));
            }
            var passed = results.All(r => r.Passed);
            if (json) Verb.WriteJson(new { Passed = passed, Tests = results });
            else foreach (var result in results) Console.Out.WriteLine(Line(result));
            return passed ? 0 : Program.Failure;
        });

    /// <summary>"PASS name: detail" or "FAIL name: detail".</summary>
    public static string Line(SelfTestResult result) => $"{(result.Passed ? "PASS" : "FAIL")} {result.Name}: {result.Detail}";

    /// <summary>
    /// Opens the backends and runs the round trips. A backend that cannot even be opened fails
    /// its own line (with the message naming the server); the ones not reached say so.
    /// </summary>
    public static async Task<IReadOnlyList<SelfTestResult>> IntegrationAsync(Configuration configuration)
    {
        Backends backends;
        try
        {
            backends = await Backends.OpenAsync(configuration, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MetaStoreException or ContentStoreException or CoordinatorException)
        {
            // Backends open in this order; one that fails stops the ones after it.
            string[] order = ["metadata", "contents", "coordination"];
            var failed = e switch { MetaStoreException => 0, ContentStoreException => 1, _ => 2 };
            return [.. order.Select((name, i) => new SelfTestResult($"integration: {name}", false,
                i == failed ? e.Message : $"not tested: {order[failed]} failed first"))];
        }
        await using (backends.ConfigureAwait(false))
            return await IntegrationTest.RunAsync(backends).ConfigureAwait(false);
    }
}
