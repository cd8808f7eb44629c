using TruckeeFs.Testing.Model;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Tests.Model;

/// <summary>
/// The randomized model test against a real TruckeeFS mount (embedded default, 64 KiB blocks so
/// that the model's files of up to 1 MiB span many blocks): thousands of operations must answer
/// exactly as on a local directory, and the tree must come back identical after an unmount and a
/// fresh mount of the same data and cache directories.
/// </summary>
public sealed class MountModelTests
{
    private const int Operations = 3000;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task AMountAgreesWithALocalDirectory(int seed)
    {
        using var data = TempDirectory.Create("model-data");
        using var cache = TempDirectory.Create("model-cache");
        using var reference = TempDirectory.CreateWithXattrsAndLinks("model-ref");
        var options = new TruckeeFsMountOptions { DataDir = data.Path, CacheDir = cache.Path, ExtraArgs = ["--block-size", "64k"] };

        await using (var mount = await TruckeeFsMount.StartAsync(options))
        {
            // The embedded default lets the kernel cache for a minute: the model checks that
            // nothing it serves from those caches goes stale.
            Assert.Contains("kernel caches attributes 60 s, names 60 s", await mount.OutputContainingAsync("kernel caches"), StringComparison.Ordinal);
            using var checker = new ModelChecker(mount.Path, reference.Path, seed);
            try
            {
                checker.Run(Operations);
                checker.CloseOpenFiles();
            }
            catch (ModelMismatchException mismatch)
            {
                Assert.Fail($"{mismatch.Message}{Environment.NewLine}truckeefs output:{Environment.NewLine}{Tail(mount.Output)}");
            }

            Assert.Equal(0, await mount.UnmountAsync());
        }

        await using var again = await TruckeeFsMount.StartAsync(options);
        var differences = TreeSnapshot.Compare(again.Path, reference.Path);
        Assert.True(differences.Count == 0, $"After a remount (seed {seed}):{Environment.NewLine}{string.Join(Environment.NewLine, differences.Take(20))}");
        Assert.Equal(0, await again.UnmountAsync());
    }

    private static string Tail(string output) => output.Length <= 4000 ? output : output[^4000..];
}
