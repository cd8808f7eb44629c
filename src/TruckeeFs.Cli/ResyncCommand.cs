using TruckeeFs.Config;
using TruckeeFs.Content;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs resync [--dry-run]</c>: brings the MIRROR-mode Tahoe tree into agreement with the
/// metadata (see <see cref="ITreeMirror.ResyncAsync"/>). Exit status as fsck's: 0 the trees
/// agreed, 1 differences found and all repaired, 4 differences left (--dry-run, or refused by
/// Tahoe), 8 a server failed, 2 bad configuration (FLAT has no tree mirror).
/// </summary>
internal static class ResyncCommand
{
    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, bool dryRun, bool json) =>
        Verb.Run(configFile, flags, async configuration =>
        {
            if (!Backends.IsMirrored(configuration, Backends.ReadTahoeOptions(configuration, requireRootCap: false)))
                throw configuration.Problem(ConfigKeys.BackendStorageStrategy, "keeps no tree mirror to resynchronise (MIRROR does)");
            var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? Backends.DefaultDataDirectory());
            if (Backends.MetadataExists(configuration, dataDirectory) == false)
            {
                Console.Error.WriteLine("truckeefs: there is no filesystem yet (the metadata database holds none)");
                return FsckCommand.OperationalError;
            }
            await using var backends = await Backends.OpenAsync(configuration, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).ConfigureAwait(false);
            // A mount's queued mirror updates, applied after the repair, would meet a tree already ahead of them.
            if (!dryRun && Verb.MountedAnywhere(backends, "resynchronising its tree mirror (--dry-run only compares)")) return FsckCommand.OperationalError;
            var report = await backends.Mirror.ResyncAsync(backends.Meta, repair: !dryRun, Verb.TerminalProgress()).ConfigureAwait(false);
            var status = report.Differences.Count == 0 ? 0 : report.Remaining.Count > 0 ? FsckCommand.ProblemsLeft : FsckCommand.Repaired;
            if (json)
            {
                Verb.WriteJson(new { InStep = report.Differences.Count == 0, report.Repaired, report.Differences, report.Remaining, report.DirectoriesListed, report.EntriesChecked });
                return status;
            }
            Console.Out.WriteLine($"compared {report.EntriesChecked} names of {backends.Meta.Description} with {backends.Mirror.Description} ({report.DirectoriesListed} directories listed)");
            foreach (var difference in report.Differences) Console.Out.WriteLine($"{difference.Kind}: {difference.Path}: {difference.Detail}");
            if (!dryRun) foreach (var left in report.Remaining) Console.Out.WriteLine($"left {left.Kind}: {left.Path}: {left.Detail}");
            Console.Out.WriteLine(report.Differences.Count == 0 ? "in step: the tree mirror agrees with the filesystem"
                : dryRun ? $"{report.Differences.Count} differences found; run without --dry-run to repair them"
                : report.Remaining.Count == 0 ? $"{report.Differences.Count} differences found and repaired"
                : $"{report.Differences.Count} differences found, {report.Remaining.Count} left after repair");
            return status;
        }, FsckCommand.OperationalError);
}
