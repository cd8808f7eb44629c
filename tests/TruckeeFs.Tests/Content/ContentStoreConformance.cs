using TruckeeFs.Content;

namespace TruckeeFs.Tests.Content;

/// <summary>
/// What every <see cref="IContentStore"/> must do, run against each implementation by a
/// subclass: exact round trips at the sizes that matter (empty, 1 byte, the literal-cap limit
/// and one past it, large, random), partial and past-the-end reads, repeated and concurrent
/// puts, unknown caps and idempotent deletes.
/// </summary>
public abstract class ContentStoreConformance : IAsyncLifetime
{
    private readonly string _staging = Path.Combine(Path.GetTempPath(), "truckeefs-conformance-" + Guid.NewGuid().ToString("N"));

    /// <summary>The store under test, made fresh for each test.</summary>
    protected IContentStore Store { get; private set; } = null!;

    /// <summary>A well-formed cap of this store's kind that names nothing stored.</summary>
    protected abstract string UnknownCap { get; }

    /// <summary>Creates the store under test.</summary>
    protected abstract Task<IContentStore> CreateStoreAsync();

    /// <summary>Releases what <see cref="CreateStoreAsync"/> started, after the store is disposed.</summary>
    protected virtual Task ReleaseAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_staging);
        Store = await CreateStoreAsync();
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        await ReleaseAsync();
        Directory.Delete(_staging, recursive: true);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(55)]
    [InlineData(56)]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public async Task Put_then_read_returns_the_same_bytes(int size)
    {
        var data = Bytes(size, seed: size);
        var cap = await PutAsync(data);
        Assert.Equal(data, await ReadAllAsync(cap, size));
    }

    [Fact]
    public async Task Random_sizes_round_trip()
    {
        var random = new Random(42);
        for (var i = 0; i < 8; i++)
        {
            var data = Bytes(random.Next(0, 300_000), seed: i);
            var cap = await PutAsync(data);
            Assert.Equal(data, await ReadAllAsync(cap, data.Length));
        }
    }

    [Theory]
    [InlineData(0, 100)]
    [InlineData(1, 1)]
    [InlineData(65_000, 70_000)]
    [InlineData(199_999, 1)]
    public async Task Reads_at_an_offset_return_that_slice(int offset, int length)
    {
        var data = Bytes(200_000, seed: 7);
        var cap = await PutAsync(data);
        var buffer = new byte[length];
        Assert.Equal(length, await Store.ReadAsync(cap, offset, buffer));
        Assert.Equal(data.AsSpan(offset, length).ToArray(), buffer);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(5000)]
    public async Task Reads_past_the_end_return_a_short_count_then_zero(int size)
    {
        var data = Bytes(size, seed: 3);
        var cap = await PutAsync(data);
        var buffer = new byte[100];
        Assert.Equal(6, await Store.ReadAsync(cap, size - 6, buffer));
        Assert.Equal(data.AsSpan(size - 6).ToArray(), buffer[..6]);
        Assert.Equal(0, await Store.ReadAsync(cap, size, buffer));
        Assert.Equal(0, await Store.ReadAsync(cap, size + 1000, buffer));
    }

    [Fact]
    public async Task Storing_the_same_bytes_twice_gives_readable_caps()
    {
        var data = Bytes(100_000, seed: 9);
        var first = await PutAsync(data);
        var second = await PutAsync(data);
        Assert.Equal(data, await ReadAllAsync(first, data.Length));
        Assert.Equal(data, await ReadAllAsync(second, data.Length));
    }

    [Fact]
    public async Task Different_bytes_give_different_caps()
    {
        var a = await PutAsync(Bytes(1000, seed: 1));
        var b = await PutAsync(Bytes(1000, seed: 2));
        Assert.NotEqual(a, b);
    }

    [Fact]
    public async Task An_unknown_cap_is_not_found()
    {
        await Assert.ThrowsAsync<ContentNotFoundException>(async () => await Store.ReadAsync(UnknownCap, 0, new byte[10]));
        await Assert.ThrowsAsync<ContentNotFoundException>(async () => await Store.ReadAsync("not a cap", 0, new byte[10]));
    }

    [Fact]
    public async Task Deleting_is_idempotent()
    {
        var cap = await PutAsync(Bytes(5000, seed: 5));
        await Store.DeleteAsync(cap);
        await Store.DeleteAsync(cap);
    }

    [Fact]
    public async Task Deleting_a_cap_never_stored_succeeds()
    {
        await Store.DeleteAsync(UnknownCap);
    }

    [Fact]
    public async Task Concurrent_puts_and_reads_do_not_interfere()
    {
        var tasks = Enumerable.Range(0, 16).Select(async i =>
        {
            var data = Bytes(20_000 + i * 1000, seed: 100 + i);
            var cap = await PutAsync(data);
            var reads = Enumerable.Range(0, 4).Select(async j =>
            {
                var buffer = new byte[1000];
                var offset = j * 5000;
                Assert.Equal(1000, await Store.ReadAsync(cap, offset, buffer));
                Assert.Equal(data.AsSpan(offset, 1000).ToArray(), buffer);
            });
            await Task.WhenAll(reads);
        });
        await Task.WhenAll(tasks);
    }

    [Fact]
    public void The_store_describes_itself()
    {
        Assert.False(string.IsNullOrWhiteSpace(Store.Description));
    }

    /// <summary>Deterministic bytes that differ per seed and per position.</summary>
    protected static byte[] Bytes(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>Writes <paramref name="data"/> to a staging file and stores it.</summary>
    protected async Task<string> PutAsync(byte[] data)
    {
        var path = Path.Combine(_staging, Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(path, data);
        var cap = await Store.PutAsync(path);
        File.Delete(path);
        return cap;
    }

    /// <summary>Reads an object of known size in uneven pieces, checking nothing follows it.</summary>
    protected async Task<byte[]> ReadAllAsync(string cap, int size)
    {
        var result = new byte[size];
        var filled = 0;
        while (filled < size)
        {
            var n = await Store.ReadAsync(cap, filled, result.AsMemory(filled, Math.Min(size - filled, 300_000)));
            Assert.True(n > 0, $"read at {filled} of {size} returned nothing");
            filled += n;
        }
        Assert.Equal(0, await Store.ReadAsync(cap, size, new byte[1]));
        return result;
    }
}
