using System.Security.Cryptography;
using TruckeeFs.Config;
using TruckeeFs.Content;
using TruckeeFs.Coordination;
using TruckeeFs.Meta;

namespace TruckeeFs.Operations;

/// <summary>
/// The integration self-test: a write, read-back and delete round trip against each backend the
/// configuration selected, embedded ones included. The probes are invisible to the filesystem
/// (a contents row no block uses, an object no block map names, a coordination key outside the
/// namespace the mounts use), so running it on a live filesystem is safe.
/// </summary>
public static class IntegrationTest
{
    // Larger than Tahoe's 55-byte LIT limit, so the probe really travels to the storage servers.
    private const int ProbeLength = 4096;

    /// <summary>One result per backend: "metadata", "contents", "coordination". Never throws for a backend failure.</summary>
    public static async Task<IReadOnlyList<SelfTestResult>> RunAsync(Backends backends, CancellationToken cancellationToken = default) =>
    [
        Metadata(backends.Meta),
        await ContentsAsync(backends.Content, backends.Options.CacheDirectory, cancellationToken).ConfigureAwait(false),
        await CoordinationAsync(backends.Coordinator, cancellationToken).ConfigureAwait(false),
    ];

    private static SelfTestResult Metadata(IMetaStore meta)
    {
        try
        {
            meta.ProbeRoundTrip();
            return new("integration: metadata", true, $"{meta.Description}: wrote, read and deleted a probe row");
        }
        catch (MetaStoreException e)
        {
            return new("integration: metadata", false, e.Message);
        }
    }

    private static async Task<SelfTestResult> ContentsAsync(IContentStore store, string scratchDirectory, CancellationToken cancellationToken)
    {
        var bytes = RandomNumberGenerator.GetBytes(ProbeLength);
        var path = Path.Combine(scratchDirectory, $"selftest-{Guid.NewGuid():N}");
        try
        {
            await File.WriteAllBytesAsync(path, bytes, cancellationToken).ConfigureAwait(false);
            var cap = await store.PutAsync(path, cancellationToken).ConfigureAwait(false);
            var read = new byte[ProbeLength + 1];
            var length = await store.ReadAsync(cap, 0, read, cancellationToken).ConfigureAwait(false);
            await store.DeleteAsync(cap, cancellationToken).ConfigureAwait(false);
            return read.AsSpan(0, length).SequenceEqual(bytes)
                ? new("integration: contents", true, $"{store.Description}: stored, read back and deleted a {ProbeLength}-byte object")
                : new("integration: contents", false, $"{store.Description}: an object read back {length} bytes that differ from the {ProbeLength} stored");
        }
        catch (Exception e) when (e is ContentStoreException or IOException or UnauthorizedAccessException)
        {
            return new("integration: contents", false, $"{store.Description}: {e.Message}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task<SelfTestResult> CoordinationAsync(ICoordinator coordinator, CancellationToken cancellationToken)
    {
        var key = $"selftest:{Guid.NewGuid():N}";
        var value = Guid.NewGuid().ToString("N");
        try
        {
            // The TTL cleans up after a probe interrupted between set and delete.
            await coordinator.SetValueAsync(key, value, TimeSpan.FromMinutes(1), cancellationToken).ConfigureAwait(false);
            var read = await coordinator.GetValueAsync(key, cancellationToken).ConfigureAwait(false);
            var deleted = await coordinator.DeleteValueAsync(key, cancellationToken).ConfigureAwait(false);
            return read == value && deleted
                ? new("integration: coordination", true, $"{coordinator.Description}: set, read and deleted a probe key")
                : new("integration: coordination", false, $"{coordinator.Description}: a probe key read back {(read is null ? "nothing" : "another value")} or was not deleted");
        }
        catch (Exception e) when (e is CoordinatorException or TimeoutException)
        {
            return new("integration: coordination", false, $"{coordinator.Description}: {e.Message}");
        }
    }
}
