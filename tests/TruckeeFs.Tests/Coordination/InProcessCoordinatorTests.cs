using TruckeeFs.Coordination;

namespace TruckeeFs.Tests.Coordination;

/// <summary>The conformance suite on in-process coordinators sharing one backplane.</summary>
public sealed class InProcessCoordinatorTests : CoordinatorConformance
{
    private readonly InProcessCoordinator.Backplane _backplane = new();

    protected override ValueTask<ICoordinator> ConnectAsync(string prefix) => ValueTask.FromResult<ICoordinator>(new InProcessCoordinator(_backplane, prefix));

    [Fact]
    public async Task DescribesItself()
    {
        await using var coordinator = new InProcessCoordinator();
        Assert.Equal("in-process", coordinator.Description);
    }

    [Fact]
    public async Task CoordinatorsWithTheirOwnBackplanesShareNothing()
    {
        await using var one = new InProcessCoordinator();
        await using var two = new InProcessCoordinator();
        await using var lease = await one.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        await one.SetValueAsync("k", "v");

        await using var other = await two.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(other);
        Assert.Null(await two.GetValueAsync("k"));
    }
}
