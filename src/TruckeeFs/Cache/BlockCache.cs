using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TruckeeFs.Content;

namespace TruckeeFs.Cache;

/// <summary>
/// Clean blocks on local disk, keyed by cap. A cap names immutable bytes, so a cached block is
/// never stale. A store that keeps its objects as local files is read in place, without a copy.
/// </summary>
public sealed class BlockCache
{
    private const int FetchChunk = 1 << 20;
    private readonly IContentStore _store;
    private readonly string _directory;

    public BlockCache(IContentStore store, string cacheDirectory)
    {
        _store = store;
        _directory = Path.Combine(cacheDirectory, "blocks");
        Directory.CreateDirectory(_directory);
    }

    /// <summary>Opens the block for reading, fetching it into the cache first if it is remote and absent.</summary>
    public async ValueTask<SafeFileHandle> OpenAsync(string cap, CancellationToken cancellationToken = default)
    {
        var path = _store.LocalPath(cap) ?? CachePath(cap);
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException) when (_store.LocalPath(cap) is null)
        {
            await FetchAsync(cap, path, cancellationToken).ConfigureAwait(false);
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ContentNotFoundException(cap);
        }
    }

    /// <summary>
    /// Takes over <paramref name="path"/>, whose bytes were just stored under <paramref name="cap"/>,
    /// as the cap's cached block (a rename, no copy), so that data written on this mount is never
    /// downloaded again. For a store that keeps objects as local files the file is just deleted.
    /// </summary>
    public void Adopt(string cap, string path)
    {
        if (_store.LocalPath(cap) is not null)
        {
            File.Delete(path);
            return;
        }
        File.Move(path, CachePath(cap), overwrite: true);
    }

    private async Task FetchAsync(string cap, string path, CancellationToken cancellationToken)
    {
        // Fetch under a temporary name: a crash or failure never leaves a partial block under the cap's name.
        var temporary = $"{path}.{Guid.NewGuid():N}.part";
        var buffer = new byte[FetchChunk];
        try
        {
            using (var handle = File.OpenHandle(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                for (long offset = 0; ; )
                {
                    var n = await _store.ReadAsync(cap, offset, buffer, cancellationToken).ConfigureAwait(false);
                    if (n == 0) break;
                    await RandomAccess.WriteAsync(handle, buffer.AsMemory(0, n), offset, cancellationToken).ConfigureAwait(false);
                    offset += n;
                    if (n < buffer.Length) break;
                }
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private string CachePath(string cap) =>
        Path.Combine(_directory, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(cap))));
}
