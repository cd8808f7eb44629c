using TruckeeFs.Fuse;
using TruckeeFs.Vfs;

namespace TruckeeFs.Cli;

/// <summary>
/// The engine's view of this mount's kernel caches, through libfuse's notifications. The engine
/// calls it from the threads that deliver other mounts' messages, not from a FUSE worker, so
/// a notification waiting for the kernel's locks cannot block the request that holds them; the
/// one exception, an open dropping attributes alone, waits for no lock.
/// ENOENT answers (the kernel has nothing cached) are expected and ignored.
/// </summary>
internal sealed class KernelNotifier(FuseSession session) : IKernelCache
{
    public void InvalidateInode(long inode, bool data) => session.NotifyInvalidateInode((ulong)inode, data ? 0 : -1, 0);

    public void InvalidateEntry(long parent, byte[] name) => session.NotifyInvalidateEntry((ulong)parent, name);
}
