using TruckeeFs.Config;
using TruckeeFs.Content;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs fsck [--repair]</c>: checks the metadata and the content store (see
/// <see cref="FilesystemCheck"/>). Exit status as fsck(8): 0 nothing wrong, 1 problems found
/// and all repaired, 4 problems left (found without --repair, or not repairable), 8 a backend failed.
/// </summary>
internal static class FsckCommand
{
    public const int Repaired = 1;
    public const int ProblemsLeft = 4;
    public const int OperationalError = 8;

    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, bool repair, bool json) =>
        Verb.Run(configFile, flags, async configuration =>
        {
            var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? Backends.DefaultDataDirectory());
            if (Backends.MetadataExists(configuration, dataDirectory) == false)
            {
                Console.Error.WriteLine("truckeefs: there is no filesystem to check yet (the metadata database holds none)");
                return OperationalError;
            }
            await using var backends = await Backends.OpenAsync(configuration, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).ConfigureAwait(false);
            // Another host's mount may hold unlinked files open and stage changes this check cannot see.
            if (repair && Verb.MountedAnywhere(backends, "repairing")) return OperationalError;
            var check = new FilesystemCheck(backends.Meta, backends.Content, Verb.TerminalProgress());
            var report = await check.RunAsync(repair).ConfigureAwait(false);
            var status = report.Clean ? 0 : report.Remaining.Count > 0 ? ProblemsLeft : Repaired;
            if (json)
            {
                Verb.WriteJson(new { report.Clean, Repaired = repair, report.Findings, report.Repairs, report.Remaining, report.CapsChecked, report.BytesChecked });
                return status;
            }
            Console.Out.WriteLine($"checked {backends.Meta.Description} and {report.CapsChecked} objects ({Verb.Bytes(report.BytesChecked)}) in {backends.Content.Description}");
            foreach (var finding in report.Findings) Console.Out.WriteLine($"{finding.Kind}: {finding.Subject}: {finding.Detail}");
            foreach (var done in report.Repairs) Console.Out.WriteLine($"repaired {done.Kind}: {done.Subject}: {done.Action}");
            if (repair) foreach (var left in report.Remaining) Console.Out.WriteLine($"left {left.Kind}: {left.Subject}: {left.Detail}");
            Console.Out.WriteLine(report.Clean ? "clean: no problems found"
                : !repair ? $"{report.Findings.Count} problems found; run with --repair to fix them"
                : report.Remaining.Count == 0 ? $"{report.Findings.Count} problems found and repaired"
                : $"{report.Findings.Count} problems found, {report.Remaining.Count} left after repair");
            return status;
        }, OperationalError);
}
