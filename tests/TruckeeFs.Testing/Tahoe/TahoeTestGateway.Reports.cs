using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TruckeeFs.Content.Tahoe;

namespace TruckeeFs.Testing.Tahoe;

public sealed partial class TahoeTestGateway
{
    private readonly Dictionary<string, JsonObject> _operations = new(StringComparer.Ordinal);

    private GatewayResponse Welcome(GatewayRequest request)
    {
        if (request.T != "json") return GatewayResponse.Page("Tahoe-LAFS - Welcome", "<h1>Welcome</h1>");
        var servers = new JsonArray();
        for (var i = 0; i < TahoeGrid.ServerNicknames.Length; i++)
        {
            servers.Add(new JsonObject
            {
                ["nodeid"] = TahoeGrid.ServerIds[i],
                ["connection_status"] = "Connected to tcp:127.0.0.1 via tcp",
                ["available_space"] = 1L << 36,
                ["nickname"] = TahoeGrid.ServerNicknames[i],
                ["version"] = "tahoe-lafs/1.18.0",
                ["last_received_data"] = Now(),
            });
        }
        var welcome = new JsonObject
        {
            ["introducers"] = new JsonObject { ["statuses"] = new JsonArray("Connected to tcp:127.0.0.1 via tcp") },
            ["servers"] = servers,
        };
        return Json(welcome, "application/json; charset=utf-8", chunked: true);
    }

    private GatewayResponse Statistics(GatewayRequest request)
    {
        if (request.T != "json") return GatewayResponse.Page("Tahoe-LAFS - Operational Statistics", "<h1>Statistics</h1>");
        var uptime = (DateTime.UtcNow - _started).TotalSeconds;
        var statistics = new JsonObject
        {
            ["counters"] = new JsonObject
            {
                ["uploader.files_uploaded"] = _grid.FilesUploaded,
                ["uploader.bytes_uploaded"] = _grid.BytesUploaded,
                ["downloader.files_downloaded"] = _grid.FilesDownloaded,
                ["downloader.bytes_downloaded"] = _grid.BytesDownloaded,
                ["mutable.files_published"] = _grid.MutablePublished,
                ["mutable.bytes_published"] = _grid.MutableBytesPublished,
                ["mutable.files_retrieved"] = 0,
                ["mutable.bytes_retrieved"] = 0,
            },
            ["stats"] = new JsonObject
            {
                ["cpu_monitor.1min_avg"] = 0.0,
                ["cpu_monitor.5min_avg"] = 0.0,
                ["cpu_monitor.total"] = Environment.CpuUsage.TotalTime.TotalSeconds,
                ["node.uptime"] = uptime,
            },
        };
        return Json(statistics, chunked: true);
    }

    private GatewayResponse StatusPage(GatewayRequest request)
    {
        if (request.T != "json") return GatewayResponse.Page("Tahoe-LAFS - Recent and Active Operations", "<h1>Status</h1>");
        // The gateway finishes every operation inside its request, so nothing is ever active.
        return Json(new JsonObject { ["active"] = new JsonArray(), ["recent"] = new JsonArray() }, "application/json", chunked: true);
    }

    private GatewayResponse Check(GatewayRequest request, TahoeCapability cap)
    {
        var repair = IsTrue(request.Arg("repair"));
        JsonObject result;
        if (repair)
        {
            var before = CheckResults(cap);
            var healthy = before["results"]?["healthy"]?.GetValue<bool>() ?? false;
            var recoverable = before["results"]?["recoverable"]?.GetValue<bool>() ?? false;
            if (!healthy && recoverable && _grid.FindImmutable(cap) is { } stored)
                Array.Fill(stored.Shares, true);
            var after = CheckResults(cap);
            result = new JsonObject
            {
                ["storage-index"] = cap.StorageIndexText,
                ["repair-attempted"] = !healthy,
                ["repair-successful"] = after["results"]?["healthy"]?.GetValue<bool>() ?? false,
                ["pre-repair-results"] = before,
                ["post-repair-results"] = after,
            };
        }
        else
        {
            result = CheckResults(cap);
        }
        if (!string.Equals(request.Arg("output"), "json", StringComparison.OrdinalIgnoreCase))
            return GatewayResponse.Page("Tahoe-LAFS - File Check Results", $"<pre>{System.Net.WebUtility.HtmlEncode(result.ToJsonString())}</pre>");
        return Json(result, chunked: true);
    }

    /// <summary>Check results as Tahoe reports them: share counts, the share map over the simulated servers, health.</summary>
    private JsonObject CheckResults(TahoeCapability cap)
    {
        if (cap.Format == CapFormat.Literal)
            return new JsonObject { ["storage-index"] = "", ["results"] = new JsonObject { ["healthy"] = true } };
        bool[] shares;
        Func<int, string> shareName;
        if (cap.IsMutable)
        {
            var slot = _grid.FindMutable(cap);
            shares = slot is null ? [false, false, false] : [true, true, true];
            var root = slot is null ? "" : TahoeCaps.EncodeBase32(SHA256.HashData(slot.Contents))[..4];
            shareName = i => string.Create(CultureInfo.InvariantCulture, $"seq{slot?.Sequence ?? 0}-{root}-sh{i}");
        }
        else
        {
            shares = _grid.FindImmutable(cap)?.Shares ?? [false, false, false];
            shareName = i => i.ToString(CultureInfo.InvariantCulture);
        }
        var good = shares.Count(s => s);
        var sharemap = new JsonObject();
        for (var i = 0; i < shares.Length; i++)
            if (shares[i]) sharemap[shareName(i)] = new JsonArray(TahoeGrid.ServerIds[i]);
        var healthy = good == TahoeGrid.ShareCount;
        return new JsonObject
        {
            ["storage-index"] = cap.StorageIndexText,
            ["summary"] = healthy ? "Healthy" : $"Not Healthy: {good} shares (enc 1-of-3)",
            ["results"] = new JsonObject
            {
                ["count-happiness"] = good,
                ["count-shares-good"] = good,
                ["count-shares-needed"] = 1,
                ["count-shares-expected"] = TahoeGrid.ShareCount,
                ["count-good-share-hosts"] = good,
                ["count-corrupt-shares"] = 0,
                ["list-corrupt-shares"] = new JsonArray(),
                ["servers-responding"] = new JsonArray([.. TahoeGrid.ServerIds.Select(id => (JsonNode)id)]),
                ["sharemap"] = sharemap,
                ["count-wrong-shares"] = 0,
                ["count-recoverable-versions"] = good > 0 ? 1 : 0,
                ["count-unrecoverable-versions"] = good > 0 ? 0 : 1,
                ["healthy"] = healthy,
                ["recoverable"] = good > 0,
            },
        };
    }

    /// <summary>One JSON object per line for every node under a directory, then a stats line.</summary>
    private GatewayResponse StreamManifest(Node root, bool deepCheck)
    {
        var text = new StringBuilder();
        var stats = Traverse(root, (path, cap) =>
        {
            var line = ManifestLine(path, cap);
            if (deepCheck) line["check-results"] = CheckResults(cap);
            text.Append(line.ToJsonString()).Append('\n');
        });
        text.Append(new JsonObject { ["type"] = "stats", ["stats"] = stats }.ToJsonString()).Append('\n');
        return GatewayResponse.Streamed(text.ToString());
    }

    private static JsonObject ManifestLine(IReadOnlyList<string> path, TahoeCapability cap)
    {
        var verifier = cap.Verifier()?.ToString() ?? "";
        var repair = cap.Access == CapAccess.Write ? cap.ToString() : verifier;
        return new JsonObject
        {
            ["path"] = new JsonArray([.. path.Select(p => (JsonNode)p)]),
            ["cap"] = cap.ToString(),
            ["type"] = cap.IsDirectory ? "directory" : "file",
            ["verifycap"] = verifier,
            ["repaircap"] = repair,
            ["storage-index"] = cap.Format == CapFormat.Literal ? "" : cap.StorageIndexText,
        };
    }

    /// <summary>Walks a tree depth first in name order (each directory once), returning deep-stats.</summary>
    private JsonObject Traverse(Node root, Action<IReadOnlyList<string>, TahoeCapability> visit)
    {
        long immutableFiles = 0, mutableFiles = 0, literalFiles = 0, directories = 0, unknown = 0;
        long immutableSize = 0, literalSize = 0, directorySize = 0, largestDirectory = 0, largestChildren = 0, largestImmutable = 0;
        var histogram = new SortedDictionary<int, long>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        Walk(root.Cap!, []);
        var buckets = new JsonArray();
        foreach (var (bucket, count) in histogram)
        {
            var (low, high) = Bucket(bucket);
            buckets.Add(new JsonArray(low, high, count));
        }
        return new JsonObject
        {
            ["api-version"] = 1,
            ["count-immutable-files"] = immutableFiles,
            ["count-mutable-files"] = mutableFiles,
            ["count-literal-files"] = literalFiles,
            ["count-files"] = immutableFiles + mutableFiles + literalFiles,
            ["count-directories"] = directories,
            ["count-unknown"] = unknown,
            ["size-immutable-files"] = immutableSize,
            ["size-literal-files"] = literalSize,
            ["size-directories"] = directorySize,
            ["largest-directory"] = largestDirectory,
            ["largest-directory-children"] = largestChildren,
            ["largest-immutable-file"] = largestImmutable,
            ["size-files-histogram"] = buckets,
        };

        void Walk(TahoeCapability cap, List<string> path)
        {
            visit(path, cap);
            if (!cap.IsDirectory)
            {
                if (cap.IsMutable) { mutableFiles++; return; }
                if (cap.Format == CapFormat.Literal) { literalFiles++; literalSize += cap.Size; }
                else { immutableFiles++; immutableSize += cap.Size; largestImmutable = Math.Max(largestImmutable, cap.Size); }
                histogram[BucketOf(cap.Size)] = histogram.GetValueOrDefault(BucketOf(cap.Size)) + 1;
                return;
            }
            directories++;
            if (!seen.Add(cap.StorageIndexText + cap.ToString()) || OpenDirectory(cap) is not { } directory) return;
            var size = TahoeDirectoryFormat.PackedSize(directory.Children);
            directorySize += size;
            largestDirectory = Math.Max(largestDirectory, size);
            largestChildren = Math.Max(largestChildren, directory.Children.Count);
            foreach (var (name, entry) in directory.Children.OrderBy(c => c.Key, TahoeDirectoryFormat.CodePointOrder))
            {
                if (TahoeCapability.Parse(directory.Writable && entry.WriteCap is not null ? entry.WriteCap : entry.ReadCap) is { } child)
                    Walk(child, [.. path, name]);
                else
                    unknown++;
            }
        }
    }

    /// <summary>Tahoe's size histogram buckets: 0, 1-3, 4-10, 11-31, 32-100, … (half decades).</summary>
    private static int BucketOf(long size)
    {
        var bucket = 0;
        while (Bucket(bucket).High < size) bucket++;
        return bucket;
    }

    private static (long Low, long High) Bucket(int bucket) => bucket == 0
        ? (0, 0)
        : ((long)Math.Pow(10, (bucket - 1) / 2.0) + (bucket == 1 ? 0 : 1), (long)Math.Pow(10, bucket / 2.0));

    /// <summary>Slow operations run to completion at once; their results wait under the ophandle.</summary>
    private GatewayResponse StartOperation(GatewayRequest request, Node root, string t)
    {
        if (request.Arg("ophandle") is not { Length: > 0 } handle) throw TahoeWebException.Text(400, "slow operation requires ophandle=");
        var manifest = new JsonArray();
        var stats = Traverse(root, (path, cap) => manifest.Add(new JsonArray(new JsonArray([.. path.Select(p => (JsonNode)p)]), cap.ToString())));
        JsonObject result = t switch
        {
            "start-deep-stats" => stats,
            "start-deep-size" => new JsonObject { ["size"] = stats["size-immutable-files"]!.GetValue<long>() + stats["size-literal-files"]!.GetValue<long>() + stats["size-directories"]!.GetValue<long>() },
            "start-manifest" => new JsonObject { ["manifest"] = manifest, ["stats"] = stats },
            _ => new JsonObject { ["root-storage-index"] = root.Cap!.StorageIndexText, ["count-objects-checked"] = manifest.Count, ["count-objects-healthy"] = manifest.Count },
        };
        result["finished"] = true;
        _operations[handle] = result;
        var output = request.Arg("output");
        return GatewayResponse.Redirect(302, $"http://{request.Host}/operations/{handle}" + (output is null ? "" : "?output=" + output), chunked: true);
    }

    private GatewayResponse Operation(GatewayRequest request, string handle)
    {
        if (!_operations.TryGetValue(handle, out var result))
            throw TahoeWebException.Html(404, "Error", $"unknown/expired handle '{handle}'");
        if (!string.Equals(request.Arg("output"), "json", StringComparison.OrdinalIgnoreCase))
            return GatewayResponse.Page("Tahoe-LAFS - Operation Results", $"<pre>{System.Net.WebUtility.HtmlEncode(result.ToJsonString())}</pre>");
        return Json(result, trailingNewline: false);
    }
}
