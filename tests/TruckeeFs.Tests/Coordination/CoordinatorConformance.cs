using System.Diagnostics;
using System.Threading.Channels;
using TruckeeFs.Coordination;

namespace TruckeeFs.Tests.Coordination;

/// <summary>
/// What every <see cref="ICoordinator"/> must do, run against each implementation. Each test
/// gets two coordinators on one backend under one fresh prefix — two mounts of one filesystem,
/// as two hosts would be — and may open more, under the same or another prefix.
/// </summary>
public abstract class CoordinatorConformance : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private readonly List<(string Prefix, ICoordinator Coordinator)> _opened = [];

    /// <summary>Contains glob characters on purpose: a reset must treat the prefix literally.</summary>
    protected string Prefix { get; } = $"truckeefs-test:{Guid.NewGuid():N}:[*]:";

    /// <summary>Another filesystem on the same backend.</summary>
    protected string OtherPrefix { get; } = $"truckeefs-test:{Guid.NewGuid():N}:";

    protected ICoordinator First { get; private set; } = null!;

    protected ICoordinator Second { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        First = await OpenAsync(Prefix);
        Second = await OpenAsync(Prefix);
    }

    public async Task DisposeAsync()
    {
        foreach (var (_, coordinator) in _opened) await coordinator.DisposeAsync();
        // Leaves nothing behind on a shared server.
        foreach (var prefix in _opened.Select(o => o.Prefix).Distinct())
        {
            await using var cleaner = await ConnectAsync(prefix);
            await cleaner.ResetAsync();
        }
    }

    /// <summary>A new coordinator on the shared backend, its keys under <paramref name="prefix"/>.</summary>
    protected abstract ValueTask<ICoordinator> ConnectAsync(string prefix);

    protected async Task<ICoordinator> OpenAsync(string prefix)
    {
        var coordinator = await ConnectAsync(prefix);
        _opened.Add((prefix, coordinator));
        return coordinator;
    }

    [Fact]
    public async Task SemaphoreHasOneHolderAcrossMounts()
    {
        var lease = await First.TryAcquireAsync("upload:1", TimeSpan.FromSeconds(30));
        Assert.NotNull(lease);
        Assert.True(lease.IsHeld);
        Assert.Equal("upload:1", lease.Name);

        Assert.Null(await Second.TryAcquireAsync("upload:1", TimeSpan.FromSeconds(30)));
        Assert.Null(await First.TryAcquireAsync("upload:1", TimeSpan.FromSeconds(30)));
        await using (var other = await Second.TryAcquireAsync("upload:2", TimeSpan.FromSeconds(30)))
            Assert.NotNull(other);

        await lease.DisposeAsync();
        Assert.False(lease.IsHeld);
        await using var next = await Second.TryAcquireAsync("upload:1", TimeSpan.FromSeconds(30));
        Assert.NotNull(next);
        Assert.NotEqual(lease.OwnerToken, next.OwnerToken);
    }

    [Fact]
    public async Task SemaphoreFreesItselfWhenItsHolderDies()
    {
        // Long enough that the check right after cannot see it expire even on a loaded machine.
        var dead = (SemaphoreLease)(await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(1)))!;
        dead.Abandon();
        Assert.Null(await Second.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));

        await using var next = await Second.AcquireAsync("sem", TimeSpan.FromSeconds(30), Patience);

        // The dead holder's token no longer frees it: release compares the owner.
        Assert.False(await Store(First).ReleaseAsync("sem", dead.OwnerToken));
        Assert.Null(await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));
        Assert.True(next.IsHeld);
    }

    [Fact]
    public async Task RenewalKeepsALeasePastItsTtl()
    {
        var ttl = TimeSpan.FromSeconds(1);
        await using var lease = await First.TryAcquireAsync("sem", ttl);
        Assert.NotNull(lease);

        await Task.Delay(ttl * 2);

        Assert.True(lease.IsHeld);
        Assert.Null(await Second.TryAcquireAsync("sem", ttl));
    }

    [Fact]
    public async Task OnlyTheOwnerTokenExtendsOrReleases()
    {
        await using var lease = await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(lease);
        var forged = new string('0', lease.OwnerToken.Length);

        Assert.False(await Store(Second).ReleaseAsync("sem", forged));
        Assert.False(await Store(Second).ExtendAsync("sem", forged, TimeSpan.FromSeconds(30)));
        Assert.Null(await Second.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));
        Assert.True(lease.IsHeld);

        Assert.True(await Store(Second).ExtendAsync("sem", lease.OwnerToken, TimeSpan.FromSeconds(30)));
        Assert.True(await Store(Second).ReleaseAsync("sem", lease.OwnerToken));
        await using var next = await Second.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(next);
    }

    [Fact]
    public async Task ALeaseWhoseSemaphoreVanishedKnowsItIsLostAndFreesNothing()
    {
        var lease = await First.TryAcquireAsync("sem", TimeSpan.FromMilliseconds(300));
        Assert.NotNull(lease);

        await Second.ResetAsync();
        await WaitUntilAsync(() => Task.FromResult(!lease.IsHeld));
        await using var next = await Second.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(next);

        await lease.DisposeAsync();
        Assert.True(next.IsHeld);
        Assert.Null(await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task AcquireWaitsForTheHolderToRelease()
    {
        var lease = await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(lease);

        var waiting = Second.AcquireAsync("sem", TimeSpan.FromSeconds(30), Patience).AsTask();
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);

        await lease.DisposeAsync();
        await using var next = await waiting.WaitAsync(Patience);
        Assert.True(next.IsHeld);
    }

    [Fact]
    public async Task AcquireGivesUpAfterItsWait()
    {
        await using var lease = await First.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(lease);

        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<TimeoutException>(async () => await Second.AcquireAsync("sem", TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(300)));

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(300), Patience);
        Assert.True(lease.IsHeld);
    }

    [Fact]
    public async Task DisposingTheCoordinatorReleasesItsLeases()
    {
        var mount = await OpenAsync(Prefix);
        var lease = await mount.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(lease);

        await mount.DisposeAsync();

        Assert.False(lease.IsHeld);
        await using var next = await Second.TryAcquireAsync("sem", TimeSpan.FromSeconds(30));
        Assert.NotNull(next);
    }

    [Fact]
    public async Task StatesCombineOverMountsAndClearPerMount()
    {
        await First.SetStateAsync(7, InodeStates.Read | InodeStates.Write, on: true);
        await Second.SetStateAsync(7, InodeStates.Write, on: true);
        Assert.Equal(InodeStates.Read | InodeStates.Write, await Second.GetStatesAsync(7));
        Assert.Equal(InodeStates.None, await First.GetStatesAsync(8));

        // The second mount still writes.
        await First.SetStateAsync(7, InodeStates.Write, on: false);
        Assert.Equal(InodeStates.Read | InodeStates.Write, await First.GetStatesAsync(7));

        await First.SetStateAsync(7, InodeStates.Read, on: false);
        await Second.SetStateAsync(7, InodeStates.Delete | InodeStates.Sync, on: true);
        Assert.Equal(InodeStates.Write | InodeStates.Delete | InodeStates.Sync, await First.GetStatesAsync(7));

        await Second.SetStateAsync(7, InodeStates.Write | InodeStates.Delete | InodeStates.Sync, on: false);
        Assert.Equal(InodeStates.None, await First.GetStatesAsync(7));
    }

    [Fact]
    public async Task ForgettingAMountClearsItsStatesOnEveryInodeAndNoOthers()
    {
        var otherFilesystem = await OpenAsync(OtherPrefix);
        Assert.NotEqual(First.MountId, Second.MountId);
        await First.SetStateAsync(7, InodeStates.Sync | InodeStates.Write, on: true);
        await First.SetStateAsync(9, InodeStates.Sync, on: true);
        await Second.SetStateAsync(9, InodeStates.Read, on: true);
        await otherFilesystem.SetStateAsync(7, InodeStates.Sync, on: true);

        // The first mount died; the second cleans up after it.
        await Second.ForgetMountAsync(First.MountId);

        Assert.Equal(InodeStates.None, await Second.GetStatesAsync(7));
        Assert.Equal(InodeStates.Read, await Second.GetStatesAsync(9));
        Assert.Equal(InodeStates.Sync, await otherFilesystem.GetStatesAsync(7));
    }

    [Fact]
    public async Task ValuesAreSharedOverwrittenAndDeleted()
    {
        Assert.Null(await Second.GetValueAsync("k"));
        await First.SetValueAsync("k", "v1");
        Assert.Equal("v1", await Second.GetValueAsync("k"));
        await Second.SetValueAsync("k", "größe \U0001F600");
        Assert.Equal("größe \U0001F600", await First.GetValueAsync("k"));

        Assert.True(await First.DeleteValueAsync("k"));
        Assert.False(await Second.DeleteValueAsync("k"));
        Assert.Null(await Second.GetValueAsync("k"));
    }

    [Fact]
    public async Task ValuesExpireAfterTheirTtl()
    {
        await First.SetValueAsync("short", "v", TimeSpan.FromMilliseconds(200));
        await First.SetValueAsync("long", "v");
        Assert.Equal("v", await Second.GetValueAsync("short"));

        await WaitUntilAsync(async () => await Second.GetValueAsync("short") is null);

        Assert.False(await Second.DeleteValueAsync("short"));
        Assert.Equal("v", await Second.GetValueAsync("long"));
    }

    [Fact]
    public async Task MessagesReachEverySubscriberIncludingThePublisher()
    {
        var atFirst = new Inbox();
        var atSecond = new Inbox();
        await using var firstSubscription = await First.SubscribeAsync("inval", atFirst.Add);
        await using var secondSubscription = await Second.SubscribeAsync("inval", atSecond.Add);

        await Second.PublishAsync("inval", "inode 42");
        await Second.PublishAsync("inval", "inode 43");

        Assert.Equal("inode 42", await atFirst.NextAsync());
        Assert.Equal("inode 43", await atFirst.NextAsync());
        Assert.Equal("inode 42", await atSecond.NextAsync());
        Assert.Equal("inode 43", await atSecond.NextAsync());
    }

    [Fact]
    public async Task AnUnsubscribedHandlerHearsNothingAndChannelsStayApart()
    {
        var gone = new Inbox();
        var staying = new Inbox();
        var subscription = await Second.SubscribeAsync("inval", gone.Add);
        await using var stayingSubscription = await Second.SubscribeAsync("inval", staying.Add);
        await subscription.DisposeAsync();
        var otherFilesystem = await OpenAsync(OtherPrefix);

        await otherFilesystem.PublishAsync("inval", "for another filesystem");
        await First.PublishAsync("inval-other", "for another channel");
        await First.PublishAsync("inval", "last");

        // Delivered in order, so once "last" is in nothing earlier can still come.
        Assert.Equal("last", await staying.NextAsync());
        Assert.True(staying.IsEmpty);
        Assert.True(gone.IsEmpty);
    }

    [Fact]
    public async Task ResetClearsThisPrefixOnly()
    {
        var otherFilesystem = await OpenAsync(OtherPrefix);
        foreach (var coordinator in new[] { First, otherFilesystem })
        {
            await coordinator.SetValueAsync("k", "v");
            await coordinator.SetStateAsync(1, InodeStates.Write, on: true);
            Assert.NotNull(await coordinator.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));
        }

        await Second.ResetAsync();

        Assert.Null(await First.GetValueAsync("k"));
        Assert.Equal(InodeStates.None, await First.GetStatesAsync(1));
        await using (var lease = await Second.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)))
            Assert.NotNull(lease);

        Assert.Equal("v", await otherFilesystem.GetValueAsync("k"));
        Assert.Equal(InodeStates.Write, await otherFilesystem.GetStatesAsync(1));
        Assert.Null(await otherFilesystem.TryAcquireAsync("sem", TimeSpan.FromSeconds(30)));
    }

    private protected static ISemaphoreStore Store(ICoordinator coordinator) => (ISemaphoreStore)coordinator;

    protected static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < Patience, $"still not so after {Patience.TotalSeconds} s");
            await Task.Delay(20);
        }
    }

    /// <summary>Messages a handler received, in order.</summary>
    protected sealed class Inbox
    {
        private readonly Channel<string> _messages = Channel.CreateUnbounded<string>();

        public bool IsEmpty => !_messages.Reader.TryPeek(out _);

        public void Add(string message) => _messages.Writer.TryWrite(message);

        public async Task<string> NextAsync() => await _messages.Reader.ReadAsync().AsTask().WaitAsync(Patience);
    }
}
