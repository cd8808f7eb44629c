using System.Security.Cryptography;

namespace TruckeeFs.Content;

/// <summary>
/// Contents as files in a local directory; an object is never written again, so a cap always
/// names the same bytes. Small objects are named by the SHA-256 of their bytes, larger ones by a
/// random 256-bit id (see <see cref="ContentAddressedMax"/>). Caps look like
/// <c>LOCAL:&lt;64 hex digits&gt;</c>. Objects live in 256 fan-out folders to keep directories small.
/// </summary>
public sealed class LocalContentStore : IContentStore
{
    private const string CapPrefix = "LOCAL:";

    /// <summary>
    /// Objects up to this size are named by their SHA-256, so identical ones are stored once:
    /// duplicates are common among small files (a quarter of /usr/include's files are), and one
    /// object for all of them saves both the objects and their deletion; hashing a small object
    /// costs a few microseconds. Larger objects get a random id: hashing read each block back
    /// and took half the mount's CPU in a sequential write (measured).
    /// </summary>
    public const int ContentAddressedMax = 64 << 10;

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");
    private readonly string _root;

    public LocalContentStore(string root)
    {
        _root = Path.GetFullPath(root);
        for (var fanout = 0; fanout < 256; fanout++)
            Directory.CreateDirectory(Path.Combine(_root, fanout.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    public string Description => $"local {_root}";

    public bool IsLocal => true;

    // Local file I/O completes in microseconds: the calls below run synchronously on the
    // caller's thread instead of hopping through the thread pool.
    public ValueTask<string> PutAsync(string path, CancellationToken cancellationToken = default)
    {
        var hash = SmallObjectHash(path);
        while (true)
        {
            var cap = CapPrefix + (hash is null ? RandomNumberGenerator.GetHexString(64, lowercase: true) : Convert.ToHexStringLower(hash));
            var target = ObjectPath(cap);
            // The staged file is complete and will not change: linking it under its final name
            // is atomic and copies nothing.
            switch (Posix.Link(path, target))
            {
                case 0:
                    return ValueTask.FromResult(cap);
                case Errno.EEXIST when hash is not null:
                    // The same bytes are stored already.
                    return ValueTask.FromResult(cap);
                case Errno.EEXIST:
                    // Another object drew the same id (one chance in 2^256): draw again.
                    continue;
                case Errno.EXDEV or Errno.EPERM:
                    // Another filesystem: copy under a temporary name, then rename, so a crash
                    // never leaves a partial object under a real cap.
                    var temporary = $"{target}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
                    File.Copy(path, temporary);
                    File.Move(temporary, target, overwrite: true);
                    return ValueTask.FromResult(cap);
                case var error:
                    throw new ContentStoreException($"local content store {_root}: cannot store {path} (errno {error})");
            }
        }
    }

    /// <summary>The SHA-256 of a file of at most <see cref="ContentAddressedMax"/> bytes; null for a larger one.</summary>
    private static byte[]? SmallObjectHash(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        // One byte more than the limit tells a larger file without asking for its size.
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ContentAddressedMax + 1);
        try
        {
            var length = 0;
            while (length <= ContentAddressedMax)
            {
                var n = RandomAccess.Read(handle, buffer.AsSpan(length, ContentAddressedMax + 1 - length), length);
                if (n == 0) return SHA256.HashData(buffer.AsSpan(0, length));
                length += n;
            }
            return null;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public ValueTask<int> ReadAsync(string cap, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var handle = OpenObject(cap);
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer.Span[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return ValueTask.FromResult(total);
    }

    public ValueTask DeleteAsync(string cap, CancellationToken cancellationToken = default)
    {
        try
        {
            File.Delete(ObjectPath(cap));
        }
        catch (DirectoryNotFoundException)
        {
            // Never stored: deleting an absent object succeeds.
        }
        return ValueTask.CompletedTask;
    }

    public string? LocalPath(string cap) => ObjectPath(cap);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// Every object the folder holds, with its file (for <c>truckeefs gc</c>, which looks for
    /// objects nothing references). Temporary files of copies in progress are not objects.
    /// </summary>
    public IEnumerable<(string Cap, FileInfo File)> Objects()
    {
        foreach (var fanout in new DirectoryInfo(_root).EnumerateDirectories())
        {
            foreach (var file in fanout.EnumerateFiles())
            {
                if (file.Name.Length == 64 && !file.Name.AsSpan().ContainsAnyExcept(HexDigits)) yield return (CapPrefix + file.Name, file);
            }
        }
    }

    private Microsoft.Win32.SafeHandles.SafeFileHandle OpenObject(string cap)
    {
        try
        {
            return File.OpenHandle(ObjectPath(cap), FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (FileNotFoundException) { throw new ContentNotFoundException(cap); }
        catch (DirectoryNotFoundException) { throw new ContentNotFoundException(cap); }
    }

    private string ObjectPath(string cap)
    {
        if (!cap.StartsWith(CapPrefix, StringComparison.Ordinal) || cap.Length != CapPrefix.Length + 64 || cap.AsSpan(CapPrefix.Length).ContainsAnyExcept(HexDigits))
            throw new ContentNotFoundException(cap);
        var hex = cap[CapPrefix.Length..];
        return Path.Combine(_root, hex[..2], hex);
    }
}
