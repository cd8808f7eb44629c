using System.Diagnostics;
using System.Text;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Tests.Production;

namespace TruckeeFs.Tests.MultiHost;

/// <summary>
/// Several <c>truckeefs mount</c> processes of one filesystem, as several hosts would run them:
/// shared MariaDB, Redis and Tahoe test gateway, each with its own data and cache directories.
/// The kernel may cache attributes and names for ten minutes, so whatever another mount sees
/// at once it sees through invalidation, not through a timeout.
/// </summary>
internal sealed class MountCluster : IAsyncDisposable
{
    /// <summary>Kernel cache timeouts the mounts run with: far longer than any test waits.</summary>
    public const string LongTimeout = "600";

    private MountCluster(ProductionFilesystem filesystem, List<TruckeeFsMount> mounts)
    {
        Filesystem = filesystem;
        Mounts = mounts;
    }

    public ProductionFilesystem Filesystem { get; }

    public List<TruckeeFsMount> Mounts { get; }

    public TruckeeFsMount A => Mounts[0];

    public TruckeeFsMount B => Mounts[1];

    /// <param name="sessionTimeout">Seconds without heartbeat before a mount is declared dead.</param>
    /// <param name="filesystem">The filesystem to mount, which the cluster then disposes; a new one on the shared servers when null.</param>
    /// <param name="netTimeout">The mounts' net_timeout, in seconds.</param>
    /// <param name="redis">Whether the mounts share Redis; without it they share only the database and the gateway, and cannot tell each other of changes.</param>
    /// <param name="extra">More flags for every mount.</param>
    public static async Task<MountCluster> StartAsync(
        int count = 2, string sessionTimeout = "60", ProductionFilesystem? filesystem = null, string netTimeout = "10", bool redis = true,
        string sessionHeartbeat = "0.2", params string[] extra)
    {
        filesystem ??= await ProductionFilesystem.CreateAsync();
        var mounts = new List<TruckeeFsMount>();
        try
        {
            // One after the other: the first creates the schema.
            for (var i = 0; i < count; i++)
            {
                mounts.Add(await TruckeeFsMount.StartAsync(filesystem.Options(netTimeout: netTimeout, redis: redis, extra:
                [
                    "--attr-timeout", LongTimeout, "--entry-timeout", LongTimeout,
                    "--session-heartbeat", sessionHeartbeat, "--session-timeout", sessionTimeout, .. extra,
                ])));
            }
            return new MountCluster(filesystem, mounts);
        }
        catch
        {
            foreach (var mount in mounts) await mount.DisposeAsync();
            await filesystem.DisposeAsync();
            throw;
        }
    }

    /// <summary>The same relative path on mount <paramref name="mount"/>.</summary>
    public static string On(TruckeeFsMount mount, string relative) => Path.Combine(mount.Path, relative);

    /// <summary>Waits until <paramref name="condition"/> holds; fails naming <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    public static void Eventually(Func<bool> condition, string what, double seconds = 5) => Eventually(condition, () => what, seconds);

    /// <summary>As above, describing the failure when it happens (<paramref name="what"/> may report the last state seen).</summary>
    public static void Eventually(Func<bool> condition, Func<string> what, double seconds = 5)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed.TotalSeconds > seconds) Assert.Fail($"after {seconds} s: {what()}");
            Thread.Sleep(10);
        }
    }

    public static void WriteFile(string path, string text)
    {
        Assert.Equal(0, Sys.Open(path, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_TRUNC, 0x1A4, out var fd));
        Assert.Equal(0, Sys.Write(fd, Encoding.UTF8.GetBytes(text), out _));
        Assert.Equal(0, Sys.Close(fd));
    }

    /// <summary>The file's contents as text through read(2), or null if it cannot be opened.</summary>
    public static string? ReadFile(string path)
    {
        if (Sys.Open(path, Sys.O_RDONLY, out var fd) != 0) return null;
        try
        {
            var buffer = new byte[1 << 20];
            var total = 0;
            while (Sys.Read(fd, buffer.AsSpan(total), out var n) == 0 && n > 0) total += n;
            return Encoding.UTF8.GetString(buffer, 0, total);
        }
        finally
        {
            Sys.Close(fd);
        }
    }

    public static int OpenReadWrite(string path)
    {
        Assert.Equal(0, Sys.Open(path, Sys.O_RDWR, out var fd));
        return fd;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var mount in Mounts) await mount.DisposeAsync();
        await Filesystem.DisposeAsync();
    }
}
