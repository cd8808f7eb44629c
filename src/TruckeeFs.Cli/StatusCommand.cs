using System.Globalization;
using TruckeeFs.Config;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;
using TruckeeFs.Operations;

namespace TruckeeFs.Cli;

/// <summary>
/// <c>truckeefs status</c>: whether each configured server answers, which hosts have the
/// filesystem mounted (the sessions table, with the age of their heartbeats), and for each
/// mount on this host its cache and upload counters (from the status file it keeps). Exit
/// status 0 when every server answers, 1 otherwise. Nothing is created or changed.
/// </summary>
internal static class StatusCommand
{
    /// <summary>One backend: which part, what it is (with its address), whether it answered.</summary>
    internal sealed record ServerHealth(string Part, string Address, bool Reachable, string Detail);

    /// <summary>A host the sessions table lists.</summary>
    internal sealed record Session(string Host, long Pid, string Mountpoint, DateTimeOffset Started, DateTimeOffset Heartbeat, double HeartbeatAgeSeconds);

    public static int Run(string? configFile, IReadOnlyDictionary<string, string> flags, bool json) =>
        Verb.Run(configFile, flags, async configuration =>
        {
            var servers = new List<ServerHealth>();
            var mounts = MountStatus.OnThisHost().Where(m => m.IsRunning).ToList();
            var (metaHealth, sessions, filesystemId) = Metadata(configuration);
            // The embedded database belongs to the one process that has it mounted.
            if (!metaHealth.Reachable && mounts.FirstOrDefault(m => m.Metadata == metaHealth.Address) is { } owner)
                metaHealth = metaHealth with { Reachable = true, Detail = $"held by the mount at {owner.Mountpoint} (pid {owner.Pid})" };
            servers.Add(metaHealth);
            servers.Add(await ContentsAsync(configuration).ConfigureAwait(false));
            servers.Add(await CoordinationAsync(configuration, filesystemId).ConfigureAwait(false));
            var healthy = servers.All(s => s.Reachable);
            if (json)
            {
                Verb.WriteJson(new { FilesystemId = filesystemId, Healthy = healthy, Servers = servers, Sessions = sessions, Mounts = mounts });
            }
            else
            {
                Print(filesystemId, servers, sessions, mounts);
            }
            return healthy ? 0 : Program.Failure;
        });

    private static void Print(string? filesystemId, List<ServerHealth> servers, IReadOnlyList<Session>? sessions, List<MountStatus> mounts)
    {
        var o = Console.Out;
        o.WriteLine($"filesystem {filesystemId ?? "(unknown: the metadata database did not answer)"}");
        o.WriteLine("servers:");
        foreach (var s in servers) o.WriteLine($"  {s.Part,-13} {(s.Reachable ? "ok  " : "DOWN")} {s.Address}{(s.Detail.Length == 0 ? "" : ": " + s.Detail)}");
        o.WriteLine("mounted hosts (sessions):");
        if (sessions is null) o.WriteLine("  (unknown: the metadata database did not answer)");
        else if (sessions.Count == 0) o.WriteLine("  none");
        foreach (var s in sessions ?? [])
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {s.Host} pid {s.Pid} at {s.Mountpoint}, up since {s.Started:u}, heartbeat {s.HeartbeatAgeSeconds:0} s ago"));
        o.WriteLine("mounts on this host:");
        if (mounts.Count == 0) o.WriteLine("  none");
        foreach (var m in mounts)
        {
            var s = m.Statistics;
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {m.Mountpoint} pid {m.Pid} {m.State}, kernel FUSE protocol {m.KernelProtocol ?? "?"}; cache {Verb.Bytes(s.CachedBytes)}, hit ratio {s.HitRatio:0.000} ({s.CacheHits} hits, {s.CacheMisses} misses); " +
                $"staged {Verb.Bytes(s.StagedBytes)}, upload queue {s.UploadQueue}, upload failures {s.UploadFailures}; downloaded {Verb.Bytes(s.BytesDownloaded)}, uploaded {Verb.Bytes(s.BytesUploaded)}; metadata writes {s.MetadataWrites}; status {(DateTimeOffset.UtcNow - m.Updated).TotalSeconds:0} s old"));
        }
    }

    private static (ServerHealth Health, IReadOnlyList<Session>? Sessions, string? FilesystemId) Metadata(Configuration configuration)
    {
        var dataDirectory = Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? Backends.DefaultDataDirectory());
        var address = configuration.IsGiven(ConfigKeys.SqlHost)
            ? $"mysql {configuration.GetAddress(ConfigKeys.SqlHost, ConfigKeys.SqlPort)}/{configuration.GetText(ConfigKeys.SqlDb)}"
            : $"sqlite {Path.Combine(dataDirectory, "metadata.db")}";
        // Opening a store creates its schema; status only looks.
        switch (Backends.MetadataExists(configuration, dataDirectory))
        {
            case false:
                return (new ServerHealth("metadata", address, true, "holds no filesystem yet (truckeefs init creates one)"), [], null);
            case null:
                // Unreachable or refusing: opening says which, in one line naming the server.
                break;
        }
        try
        {
            using var meta = Backends.OpenMetaStore(configuration, dataDirectory);
            var now = DateTimeOffset.UtcNow;
            var sessions = meta.Sessions().Select(s => new Session(s.Host, s.Pid, s.Mountpoint, FromNanoseconds(s.Started), FromNanoseconds(s.Heartbeat),
                Math.Max(0, (now - FromNanoseconds(s.Heartbeat)).TotalSeconds))).ToList();
            return (new ServerHealth("metadata", meta.Description, true, ""), sessions, meta.FilesystemId);
        }
        catch (MetaStoreException e)
        {
            return (new ServerHealth("metadata", address, false, e.Message), null, null);
        }
    }

    private static async Task<ServerHealth> ContentsAsync(Configuration configuration)
    {
        var tahoe = Backends.ReadTahoeOptions(configuration, requireRootCap: false);
        if (tahoe is null)
        {
            var folder = Path.Combine(Path.GetFullPath(configuration.GetPath(ConfigKeys.DataDir) ?? Backends.DefaultDataDirectory()), "contents");
            return new ServerHealth("contents", $"local {folder}", true, Directory.Exists(folder) ? "" : "not created yet");
        }
        using var client = new TahoeClient(tahoe);
        try
        {
            if (tahoe.RootCap is { } rootCap)
            {
                var listing = await client.ListAsync(rootCap).ConfigureAwait(false);
                return new ServerHealth("contents", $"tahoe {tahoe.TahoeUrl}", true, $"the rootcap lists {listing.Children.Count} entries");
            }
            using var http = new HttpClient { Timeout = tahoe.NetTimeout };
            using var welcome = await http.GetAsync(tahoe.TahoeUrl).ConfigureAwait(false);
            return new ServerHealth("contents", $"tahoe {tahoe.TahoeUrl}", true, $"answers (HTTP {(int)welcome.StatusCode}); no rootcap configured");
        }
        catch (Exception e) when (e is ContentStoreException or HttpRequestException or TaskCanceledException)
        {
            return new ServerHealth("contents", $"tahoe {tahoe.TahoeUrl}", false, e.Message);
        }
    }

    private static async Task<ServerHealth> CoordinationAsync(Configuration configuration, string? filesystemId)
    {
        var redis = Backends.ReadRedisOptions(configuration);
        if (redis is null) return new ServerHealth("coordination", "in-process", true, "");
        var address = $"redis {redis.Host}:{redis.Port}/{redis.Database}";
        redis.KeyPrefix = Backends.RedisKeyPrefix(filesystemId ?? "status");
        try
        {
            await using var coordinator = await RedisCoordinator.ConnectAsync(redis).ConfigureAwait(false);
            await coordinator.GetValueAsync("status-probe").ConfigureAwait(false);
            return new ServerHealth("coordination", coordinator.Description, true, "");
        }
        catch (Exception e) when (e is CoordinatorException or TimeoutException)
        {
            return new ServerHealth("coordination", address, false, e.Message);
        }
    }

    private static DateTimeOffset FromNanoseconds(long nanoseconds) => DateTimeOffset.UnixEpoch.AddTicks(nanoseconds / 100);
}
