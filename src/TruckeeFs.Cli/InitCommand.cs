using TruckeeFs.Config;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs init</c>: prepares what the configuration selects before the first mount. It
/// creates or migrates the metadata schema (SQLite in data_dir, or MySQL/MariaDB), creates a
/// writable Tahoe directory for the rootcap when Tahoe is selected without one, and checks that
/// Redis answers. Running it again changes nothing that exists. What it did goes to standard
/// error; the one line to add to the configuration file (<c>rootcap: URI:DIR2:...</c>) goes to
/// standard output, so <c>truckeefs init -c env.yaml &gt;&gt; env.yaml</c> records it.
/// </summary>
internal static class InitCommand
{
    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags)
    {
        try
        {
            var configuration = Configuration.Load(configFile, flags, Environment.GetEnvironmentVariables());
            return RunAsync(configuration).GetAwaiter().GetResult();
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"truckeefs: {e.Message}");
            return Program.BadConfiguration;
        }
        catch (Exception e) when (e is MetaStoreException or ContentStoreException or CoordinatorException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"truckeefs: {e.Message}");
            return Program.Failure;
        }
    }

    private static async Task<int> RunAsync(Configuration configuration)
    {
        // Everything is read and checked before anything is created.
        var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? Backends.DefaultDataDirectory());
        var tahoe = Backends.ReadTahoeOptions(configuration, requireRootCap: false);
        var strategy = Backends.IsMirrored(configuration, tahoe) ? "MIRROR" : "FLAT";
        var redis = Backends.ReadRedisOptions(configuration);

        var existed = Backends.MetadataExists(configuration, dataDirectory);
        string filesystemId;
        using (var meta = Backends.OpenMetaStore(configuration, dataDirectory))
        {
            filesystemId = meta.FilesystemId;
            Console.Error.WriteLine(existed == true
                ? $"truckeefs: metadata: {meta.Description} already holds filesystem {filesystemId}; its schema is up to date"
                : $"truckeefs: metadata: created the schema and filesystem {filesystemId} in {meta.Description}");
        }

        if (tahoe is null)
        {
            Console.Error.WriteLine($"truckeefs: contents: the local store in {Path.Combine(dataDirectory, "contents")} (tahoe_url is not set)");
        }
        else
        {
            using var client = new TahoeClient(tahoe);
            if (tahoe.RootCap is { } rootCap)
            {
                var listing = await client.ListAsync(rootCap).ConfigureAwait(false);
                if (listing.WriteCap is null) throw configuration.Problem(ConfigKeys.RootCap, "is a read-only directory cap; give the writable URI:DIR2: cap");
                Console.Error.WriteLine($"truckeefs: contents: Tahoe-LAFS at {tahoe.TahoeUrl}; the rootcap is a writable directory with {listing.Children.Count} entries ({strategy})");
            }
            else
            {
                var created = await client.CreateDirectoryAsync().ConfigureAwait(false);
                Console.Error.WriteLine($"truckeefs: contents: created a writable root directory on the Tahoe-LAFS gateway at {tahoe.TahoeUrl}.");
                Console.Error.WriteLine("truckeefs: add the rootcap line below to the configuration file (or set TRUCKEEFS_ROOTCAP).");
                Console.Error.WriteLine("truckeefs: keep it secret and keep a copy: it grants access to every file, and without it the contents cannot be found.");
                Console.Out.WriteLine($"rootcap: {created}");
                Console.Out.Flush();
            }
        }

        if (redis is not null)
        {
            redis.KeyPrefix = Backends.RedisKeyPrefix(filesystemId);
            await using var coordinator = await RedisCoordinator.ConnectAsync(redis).ConfigureAwait(false);
            Console.Error.WriteLine($"truckeefs: coordination: {coordinator.Description} answers; this filesystem's keys start with {redis.KeyPrefix} (nothing to create)");
        }
        else
        {
            Console.Error.WriteLine("truckeefs: coordination: in-process (redis_host is not set; one host at a time)");
        }
        return 0;
    }
}
