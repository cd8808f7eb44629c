namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// The contract between the Tahoe test gateway and a real Tahoe-LAFS 1.18 gateway: every
/// exchange in shared/tahoe-wapi/recordings.jsonl is replayed (in order, on one gateway) and its
/// response compared with the recorded one. One test case per exchange.
///
/// What "matches" means:
/// * the status code, always exactly;
/// * Content-Type, Content-Range and Content-Disposition exactly; Location exactly once caps and
///   the gateway's address are mapped; Accept-Ranges, ETag, Content-Length and
///   Transfer-Encoding present exactly when recorded; ETag values and Content-Length values
///   exactly wherever the body is known exactly;
/// * data bodies byte for byte (SHA-256 of the recorded bytes), short texts and small HTML error
///   pages exactly, caps by their recorded/actual pairing (see <see cref="CapMapper"/>), JSON by
///   structure: the same keys, the same value types, equal values with caps mapped, link times
///   ignored except whether linkmotime moved past linkcrtime.
///
/// Deliberately looser, and why:
/// * groups <c>status</c> and <c>check_manifest</c>, and every <c>t=check</c> (including the
///   share-loss checks in <c>errors</c>): JSON compared by keys and value types only, because
///   the values are the recorded grid's state (uptime, CPU, counters from earlier runs, which
///   server held which share after earlier repairs, packed directory sizes);
/// * full HTML pages (welcome, <c>t=info</c>, directory listings, the multipart upload result):
///   only their title is compared (the recording kept nothing else), with the storage-index
///   abbreviation masked;
/// * 500 tracebacks: the recording kept only the exception line, which must appear in the body;
/// * HEAD errors: only the presence of Content-Length, since the error text was never sent.
/// </summary>
public sealed class RecordingContractTests(RecordingReplay replay) : IClassFixture<RecordingReplay>
{
    /// <summary>Every recorded exchange, by name.</summary>
    public static TheoryData<string> ExchangeNames() => [.. Recordings.Exchanges.Select(e => e.Name)];

    [Theory]
    [MemberData(nameof(ExchangeNames))]
    public void Exchange_matches_the_recording(string name)
    {
        var problems = replay.OutcomeOf(name);
        Assert.True(problems.Count == 0, $"{name}:\n  " + string.Join("\n  ", problems));
    }

    [Fact]
    public void Only_the_latency_downloads_of_unrecorded_uploads_needed_preloading()
    {
        // The parallel GETs of the latency run read files uploaded by steps the recording skipped.
        Assert.Equal(["time_parallel4_get_1MiB_1", "time_parallel4_get_1MiB_2", "time_parallel4_get_1MiB_3", "time_parallel4_get_1MiB_0"], replay.Preloaded);
    }

    [Fact]
    public void The_recordings_cover_every_group()
    {
        var groups = Recordings.Exchanges.Select(e => e.Group).Distinct().Order().ToList();
        Assert.Equal(["check_manifest", "delete", "dir_ops", "download", "errors", "head_etag", "json_info", "latency", "mkdir", "names", "range", "rename_relink", "set_children", "status", "upload_immutable", "upload_mutable"], groups);
        Assert.Equal(Recordings.Exchanges.Count, Recordings.Exchanges.Select(e => e.Name).Distinct().Count());
    }
}
