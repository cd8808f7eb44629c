using TruckeeFs.Content;

namespace TruckeeFs.Tests.Content;

/// <summary>The conformance suite on <see cref="LocalContentStore"/> in a temporary directory.</summary>
public sealed class LocalContentStoreConformanceTests : ContentStoreConformance
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "truckeefs-local-store-" + Guid.NewGuid().ToString("N"));

    protected override string UnknownCap => "LOCAL:" + new string('0', 64);

    protected override Task<IContentStore> CreateStoreAsync() => Task.FromResult<IContentStore>(new LocalContentStore(_root));

    [Fact]
    public async Task Small_objects_are_named_by_their_bytes_and_larger_ones_each_get_their_own()
    {
        var small = Bytes(LocalContentStore.ContentAddressedMax, seed: 4);
        var large = Bytes(LocalContentStore.ContentAddressedMax + 1, seed: 5);

        var smallCaps = new[] { await PutAsync(small), await PutAsync(small) };
        var largeCaps = new[] { await PutAsync(large), await PutAsync(large) };

        Assert.Equal(smallCaps[0], smallCaps[1]);
        Assert.Equal("LOCAL:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(small)), smallCaps[0]);
        Assert.NotEqual(largeCaps[0], largeCaps[1]);
        foreach (var cap in largeCaps) Assert.Equal(large, await ReadAllAsync(cap, large.Length));
        Assert.Equal(small, await ReadAllAsync(smallCaps[0], small.Length));
    }

    protected override Task ReleaseAsync()
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }
}
