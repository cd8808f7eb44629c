using TruckeeFs.Content;

namespace TruckeeFs.Tests.Content;

/// <summary>The conformance suite on <see cref="LocalContentStore"/> in a temporary directory.</summary>
public sealed class LocalContentStoreConformanceTests : ContentStoreConformance
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "truckeefs-local-store-" + Guid.NewGuid().ToString("N"));

    protected override string UnknownCap => "LOCAL:" + new string('0', 64);

    protected override Task<IContentStore> CreateStoreAsync() => Task.FromResult<IContentStore>(new LocalContentStore(_root));

    protected override Task ReleaseAsync()
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }
}
