using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.Tahoe;

/// <summary>
/// The gateway Tahoe-facing tests talk to: a real one when <c>TRUCKEEFS_TEST_TAHOE_URL</c> is
/// set, otherwise a <see cref="TahoeTestGateway"/> started here. Tests that inject faults use
/// <see cref="TahoeTestGateway"/> directly, since a real gateway cannot be told to fail.
/// </summary>
public sealed class TahoeGatewayUnderTest : IAsyncLifetime
{
    private TahoeTestGateway? _fake;

    /// <summary>The gateway's root URL.</summary>
    public Uri Url { get; private set; } = null!;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("TRUCKEEFS_TEST_TAHOE_URL") is { Length: > 0 } url)
        {
            Url = new Uri(url.EndsWith('/') ? url : url + "/");
            return;
        }
        _fake = await TahoeTestGateway.StartAsync();
        Url = _fake.BaseUri;
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_fake is not null) await _fake.DisposeAsync();
    }
}
