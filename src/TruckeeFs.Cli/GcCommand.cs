using System.Globalization;
using TruckeeFs.Config;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs gc [--delete] [--min-age SECONDS]</c>: lists (by default) or deletes content
/// objects and cached blocks nothing references (see <see cref="GarbageCollection"/>).
/// </summary>
internal static class GcCommand
{
    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, bool delete, double minimumAgeSeconds, bool json) =>
        Verb.Run(configFile, flags, async configuration =>
        {
            var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? Backends.DefaultDataDirectory());
            if (Backends.MetadataExists(configuration, dataDirectory) == false)
            {
                Console.Error.WriteLine("truckeefs: there is no filesystem yet (the metadata database holds none)");
                return Program.Failure;
            }
            await using var backends = await Backends.OpenAsync(configuration, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).ConfigureAwait(false);
            var collection = new GarbageCollection(backends.Meta, backends.Content, backends.Options.CacheDirectory,
                TimeSpan.FromSeconds(minimumAgeSeconds), Verb.TerminalProgress());
            var report = await collection.RunAsync(delete).ConfigureAwait(false);
            if (json)
            {
                Verb.WriteJson(new { report.Deleted, report.ReferencedCaps, Count = report.Items.Count, report.Bytes, report.Items, report.StoreNote });
                return 0;
            }
            foreach (var item in report.Items) Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(delete ? "deleted" : "unreferenced")} {item.Kind} {item.Name} ({item.Bytes} bytes)"));
            if (report.StoreNote is not null) Console.Out.WriteLine($"note: {report.StoreNote}");
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{report.Items.Count} unreferenced items, {Verb.Bytes(report.Bytes)}; {report.ReferencedCaps} caps referenced; ") +
                (delete ? "deleted" : "nothing deleted (dry run: add --delete to delete them)"));
            return 0;
        });
}
