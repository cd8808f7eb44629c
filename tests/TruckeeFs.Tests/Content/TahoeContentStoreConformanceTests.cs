using System.Security.Cryptography;
using TruckeeFs.Content;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Tests.Tahoe;

namespace TruckeeFs.Tests.Content;

/// <summary>
/// The conformance suite on <see cref="TahoeContentStore"/>: against the gateway at
/// <c>TRUCKEEFS_TEST_TAHOE_URL</c> when that is set, otherwise against the in-process test gateway.
/// </summary>
public sealed class TahoeContentStoreConformanceTests : ContentStoreConformance
{
    private readonly TahoeGatewayUnderTest _gateway = new();

    /// <summary>A well-formed CHK cap with a random key: no grid holds shares for it.</summary>
    protected override string UnknownCap { get; } =
        $"URI:CHK:{TahoeCaps.EncodeBase32(RandomNumberGenerator.GetBytes(16))}:{TahoeCaps.EncodeBase32(RandomNumberGenerator.GetBytes(32))}:1:3:1000";

    protected override async Task<IContentStore> CreateStoreAsync()
    {
        await _gateway.InitializeAsync();
        return new TahoeContentStore(new TahoeOptions { TahoeUrl = _gateway.Url, NetTimeout = TimeSpan.FromSeconds(10) });
    }

    protected override Task ReleaseAsync() => _gateway.DisposeAsync();

    [Fact]
    public async Task Tiny_files_become_literal_caps_made_without_the_gateway()
    {
        var cap = await PutAsync("0123456789"u8.ToArray());
        Assert.Equal("URI:LIT:gaytemzugu3doobz", cap);
        Assert.Equal("URI:LIT:", await PutAsync([]));
    }

    [Fact]
    public async Task Larger_files_become_chk_caps_that_carry_their_size()
    {
        var cap = await PutAsync(Bytes(56, seed: 1));
        Assert.StartsWith("URI:CHK:", cap, StringComparison.Ordinal);
        Assert.EndsWith(":56", cap, StringComparison.Ordinal);
    }
}
