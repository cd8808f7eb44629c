using System.Diagnostics;
using TruckeeFs.Content.Tahoe;
using TruckeeFs.Testing.Mounting;
using TruckeeFs.Testing.Posix;
using TruckeeFs.Testing.Tahoe;

namespace TruckeeFs.Tests.WriteBack;

/// <summary>
/// One filesystem with embedded metadata (a data directory kept across mounts) and its contents
/// on the in-process Tahoe test gateway, whose latency, faults and upload counters the
/// write-back tests use. Mounts get a cache directory of their own unless one is given.
/// </summary>
internal sealed class TahoeBackedFilesystem : IAsyncDisposable
{
    private readonly TempDirectory _data;

    private TahoeBackedFilesystem(TahoeTestGateway gateway, string rootCap, TempDirectory data)
    {
        Gateway = gateway;
        RootCap = rootCap;
        _data = data;
    }

    public TahoeTestGateway Gateway { get; }

    public string RootCap { get; }

    public string DataDir => _data.Path;

    public static async Task<TahoeBackedFilesystem> CreateAsync()
    {
        var gateway = await TahoeTestGateway.StartAsync();
        using var client = new TahoeClient(new TahoeOptions { TahoeUrl = gateway.BaseUri, NetTimeout = TimeSpan.FromSeconds(10) });
        var rootCap = await client.CreateDirectoryAsync();
        return new TahoeBackedFilesystem(gateway, rootCap, TempDirectory.Create("wb-data"));
    }

    /// <summary>Mount options: this filesystem's data directory, the gateway, <paramref name="blockSize"/> blocks.</summary>
    public TruckeeFsMountOptions Options(string? cacheDir = null, string blockSize = "64k", string netTimeout = "10", string maxConnections = "10") => new()
    {
        DataDir = DataDir,
        CacheDir = cacheDir,
        ExtraArgs = ["--tahoe-url", Gateway.BaseUri.ToString(), "--block-size", blockSize, "--net-timeout", netTimeout, "--max-connections", maxConnections],
        Environment = new Dictionary<string, string?> { ["TRUCKEEFS_ROOTCAP"] = RootCap },
    };

    /// <summary>Files in the staging folder of a cache directory (staged blocks and journal entries).</summary>
    public static string[] Staged(string cacheDir)
    {
        var staging = Path.Combine(cacheDir, "staging");
        return Directory.Exists(staging) ? Directory.GetFiles(staging) : [];
    }

    /// <summary>Polls <paramref name="condition"/> until true; fails after <paramref name="seconds"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, double seconds = 30)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed.TotalSeconds < seconds, $"timed out after {seconds} s waiting until {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>fsync(2) of a file through a new descriptor: every closed version of it is committed when this returns.</summary>
    public static void Fsync(string path)
    {
        Assert.Equal(0, Sys.Open(path, Sys.O_RDONLY, out var fd));
        try
        {
            Assert.Equal(0, Sys.Fsync(fd));
        }
        finally
        {
            Sys.Close(fd);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        _data.Dispose();
    }
}
