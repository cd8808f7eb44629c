using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using TruckeeFs.Vfs;

namespace TruckeeFs.Operations;

/// <summary>
/// What a running mount tells <c>truckeefs status</c> and <c>truckeefs umount</c> about itself.
/// The mount rewrites it every few seconds in its cache folder (<see cref="FileName"/>), and
/// links it from this host's runtime folder under a name derived from the mount point, so both
/// verbs find every mount of the host and the process behind a mount point.
/// </summary>
/// <param name="State">"starting", "mounted", "stopping" or "stopped".</param>
/// <param name="ExitCode">The process's exit status once stopped.</param>
public sealed record MountStatus(
    int Pid, string Host, string Mountpoint, string State, DateTimeOffset Started, DateTimeOffset Updated, int? ExitCode,
    string Metadata, string Contents, string Coordination, string CacheDirectory, string? KernelProtocol, VfsStatisticsSnapshot Statistics)
{
    public const string FileName = "status.json";

    /// <summary>How often a running mount rewrites its status.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Where this host's mounts are listed: /run/truckeefs as root, else $XDG_RUNTIME_DIR/truckeefs,
    /// else a folder of this user's in the temporary folder.
    /// </summary>
    public static string RuntimeDirectory
    {
        get
        {
            if (Environment.IsPrivilegedProcess) return "/run/truckeefs";
            var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            return string.IsNullOrEmpty(runtime)
                ? Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"truckeefs-{Posix.GetUid()}"))
                : Path.Combine(runtime, "truckeefs");
        }
    }

    /// <summary>The runtime folder's link for a mount point.</summary>
    public static string LinkFor(string mountpoint) =>
        Path.Combine(RuntimeDirectory, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(mountpoint)))[..32] + ".json");

    /// <summary>Replaces the file at <paramref name="path"/> atomically, so a reader never sees half of it.</summary>
    public void Write(string path)
    {
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(this, MountStatusJson.Default.MountStatus));
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Lists this status under its mount point in the runtime folder (a link to <paramref name="path"/>).</summary>
    public void Register(string path)
    {
        var link = LinkFor(Mountpoint);
        Directory.CreateDirectory(RuntimeDirectory);
        // Mounts that were killed could not remove their links; whoever registers next does.
        foreach (var listed in Directory.EnumerateFiles(RuntimeDirectory, "*.json"))
        {
            if (ReadListed(listed) is not { IsRunning: true }) File.Delete(listed);
        }
        File.Delete(link);
        File.CreateSymbolicLink(link, path);
    }

    /// <summary>Removes this mount's runtime link, if it still points at <paramref name="path"/>.</summary>
    public void Unregister(string path)
    {
        var link = new FileInfo(LinkFor(Mountpoint));
        if (link.LinkTarget == path) link.Delete();
    }

    /// <summary>The status at <paramref name="path"/>, or null when there is none or it cannot be read.</summary>
    public static MountStatus? Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), MountStatusJson.Default.MountStatus);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    /// <summary>The status of the mount at <paramref name="mountpoint"/> on this host, or null.</summary>
    public static MountStatus? ForMountpoint(string mountpoint) => ReadListed(LinkFor(mountpoint));

    /// <summary>Every mount this host's runtime folder lists, running or stopped since.</summary>
    public static IReadOnlyList<MountStatus> OnThisHost()
    {
        if (!Directory.Exists(RuntimeDirectory)) return [];
        return [.. Directory.EnumerateFiles(RuntimeDirectory, "*.json").Select(ReadListed).OfType<MountStatus>().OrderBy(s => s.Mountpoint, StringComparer.Ordinal)];
    }

    /// <summary>
    /// The status a runtime link leads to, if it is still the status of that link's mount point:
    /// a later mount with the same cache folder rewrites the file a killed mount's link names.
    /// </summary>
    private static MountStatus? ReadListed(string link) => Read(link) is { } status && LinkFor(status.Mountpoint) == link ? status : null;

    /// <summary>Whether the process that wrote this status still runs (it could be a new process with the same id; the start time tells).</summary>
    [JsonIgnore]
    public bool IsRunning
    {
        get
        {
            if (State == "stopped") return false;
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(Pid);
                return !process.HasExited && process.StartTime.ToUniversalTime() <= Started.UtcDateTime.AddSeconds(1);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                return false;
            }
        }
    }
}

/// <summary>
/// The status file's JSON (snake_case names), generated at build time: the reflection-based
/// serializer emits and compiles several hundred methods in a new mount, which a mount writing
/// its status every few seconds pays in its first seconds of serving, when the compiler
/// already has the hot paths to do (measured: 1,201 methods compiled by the time a mount was
/// ready with the reflection-based serializer, 791 with this one).
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(MountStatus))]
internal sealed partial class MountStatusJson : JsonSerializerContext;
