using System.Diagnostics;
using TruckeeFs.Config;
using TruckeeFs.Operations;
using TruckeeFs.Vfs;

namespace TruckeeFs.Cli;

/// <summary>
/// Keeps a mount's <see cref="MountStatus"/> file current: written at once, every
/// <see cref="MountStatus.Interval"/> while mounted, at each change of state and a last time
/// when stopped (with the exit status, which <c>truckeefs umount</c> reports). A status that
/// cannot be written costs the mount nothing but <c>truckeefs status</c>'s view of it.
/// </summary>
internal sealed class StatusWriter : IDisposable
{
    private readonly Lock _gate = new();
    private readonly string _path;
    private readonly Timer _timer;
    private MountStatus _status;
    private readonly VfsStatistics _statistics;
    private readonly Func<string?> _kernelProtocol;

    public StatusWriter(string mountpoint, Backends backends, VfsStatistics statistics, Func<string?> kernelProtocol)
    {
        _statistics = statistics;
        _kernelProtocol = kernelProtocol;
        _path = Path.Combine(backends.Options.CacheDirectory, MountStatus.FileName);
        using var self = Process.GetCurrentProcess();
        var now = DateTimeOffset.UtcNow;
        _status = new MountStatus(Environment.ProcessId, Environment.MachineName, mountpoint, "starting", self.StartTime.ToUniversalTime(), now, null,
            backends.Meta.Description, backends.Content.Description, backends.Coordinator.Description, backends.Options.CacheDirectory, null, statistics.Snapshot());
        Write();
        Try(() => _status.Register(_path));
        _timer = new Timer(_ => Write(), null, MountStatus.Interval, MountStatus.Interval);
    }

    /// <summary>Records a new state ("mounted", "stopping").</summary>
    public void Update(string state)
    {
        lock (_gate) _status = _status with { State = state };
        Write();
    }

    /// <summary>The last word: stopped with <paramref name="exitCode"/>.</summary>
    public void Stopped(int exitCode)
    {
        _timer.Dispose();
        lock (_gate) _status = _status with { State = "stopped", ExitCode = exitCode };
        Write();
    }

    public void Dispose()
    {
        _timer.Dispose();
        // A stopped mount stays readable through its cache folder; the host's list drops it.
        Try(() => _status.Unregister(_path));
    }

    private void Write()
    {
        lock (_gate)
        {
            _status = _status with { Updated = DateTimeOffset.UtcNow, KernelProtocol = _kernelProtocol(), Statistics = _statistics.Snapshot() };
            Try(() => _status.Write(_path));
        }
    }

    private static void Try(Action write)
    {
        try
        {
            write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Status is a report, never a reason to fail the mount.
        }
    }
}
