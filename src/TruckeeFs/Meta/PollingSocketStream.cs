using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;

namespace TruckeeFs.Meta;

/// <summary>
/// A stream over a connected socket that waits for it in poll(2) on the calling thread and
/// then reads or writes it with recv(2) and send(2), bounded by <see cref="ReadTimeout"/> and
/// <see cref="WriteTimeout"/> as <see cref="NetworkStream"/> is. .NET's own synchronous reads of
/// a socket that was ever used asynchronously go through its event loop and a thread-pool
/// worker instead (see <see cref="BatchingMySqlConnection.WaitInTheKernel"/>). The socket stays
/// non-blocking, as .NET left it; failures throw <see cref="IOException"/> around a
/// <see cref="SocketException"/>, as NetworkStream's do. Disposing disposes the wrapped stream.
/// </summary>
internal sealed partial class PollingSocketStream : Stream
{
    private const short PollIn = 0x1, PollOut = 0x4;
    private const int Interrupted = 4, WouldBlock = 11, NoSignal = 0x4000, EpollDelete = 2;
    private const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;
    private readonly NetworkStream _network;
    private readonly SafeHandle _socket;

    public PollingSocketStream(NetworkStream network)
    {
        _network = network;
        _socket = network.Socket.SafeHandle;
        ReadTimeout = network.ReadTimeout;
        WriteTimeout = network.WriteTimeout;
        LeaveEventLoop(network.Socket);
    }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override bool CanTimeout => true;

    /// <summary>
    /// Milliseconds a read waits for data; <see cref="Timeout.Infinite"/> (or 0) waits for ever.
    /// Starts as the wrapped stream's: MySql.Data sets a timeout only when it differs from the last one it set.
    /// </summary>
    public override int ReadTimeout { get; set; }

    /// <summary>Milliseconds a write waits for room; <see cref="Timeout.Infinite"/> (or 0) waits for ever. Starts as the wrapped stream's.</summary>
    public override int WriteTimeout { get; set; }

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override unsafe int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        var added = false;
        try
        {
            _socket.DangerousAddRef(ref added);
            var fd = (int)_socket.DangerousGetHandle();
            while (true)
            {
                nint received;
                fixed (byte* start = buffer) received = recv(fd, start, (nuint)buffer.Length, 0);
                if (received >= 0) return (int)received;
                var error = Marshal.GetLastPInvokeError();
                if (error == WouldBlock) WaitFor(fd, PollIn, ReadTimeout, "reading");
                else if (error != Interrupted) throw Failed(error, "reading");
            }
        }
        finally
        {
            if (added) _socket.DangerousRelease();
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        var added = false;
        try
        {
            _socket.DangerousAddRef(ref added);
            var fd = (int)_socket.DangerousGetHandle();
            while (!buffer.IsEmpty)
            {
                nint sent;
                fixed (byte* start = buffer) sent = send(fd, start, (nuint)buffer.Length, NoSignal);
                if (sent >= 0)
                {
                    buffer = buffer[(int)sent..];
                    continue;
                }
                var error = Marshal.GetLastPInvokeError();
                if (error == WouldBlock) WaitFor(fd, PollOut, WriteTimeout, "writing");
                else if (error != Interrupted) throw Failed(error, "writing");
            }
        }
        finally
        {
            if (added) _socket.DangerousRelease();
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _network.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>
    /// Takes the socket out of .NET's epoll set. A socket .NET ever waited for asynchronously
    /// (MySql.Data connects that way) stays in it, edge-triggered for reading and writing, so
    /// every send of ours that drains and every reply woke .NET's event thread, which handed the
    /// event to a thread-pool worker that found nothing to do: 40% of the mount's CPU in a run of
    /// mkdirs on MariaDB (measured). From here only this stream uses the socket. Where .NET keeps
    /// the set elsewhere than the version this was written against, the socket stays in it.
    /// </summary>
    private static unsafe void LeaveEventLoop(Socket socket)
    {
        if (EventLoopOf(socket) is not { } port) return;
        var handle = socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            // An error (the socket was never in the set) changes nothing.
            epoll_ctl((int)port, EpollDelete, (int)handle.DangerousGetHandle(), null);
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>The epoll instance of the .NET event loop that took <paramref name="socket"/> in, or null (none, or not found where .NET 10 keeps it).</summary>
    internal static nint? EventLoopOf(Socket socket)
    {
        var handle = socket.SafeHandle;
        var context = handle.GetType().GetField("_asyncContext", Private)?.GetValue(handle);
        var engine = context?.GetType().GetField("_asyncEngine", Private)?.GetValue(context);
        return engine?.GetType().GetField("_port", Private)?.GetValue(engine) as nint?;
    }

    /// <summary>Waits until the socket is ready for <paramref name="events"/>, or throws a timeout after <paramref name="timeout"/> ms.</summary>
    private static unsafe void WaitFor(int fd, short events, int timeout, string doing)
    {
        var deadline = timeout > 0 ? Environment.TickCount64 + timeout : long.MaxValue;
        while (true)
        {
            var wait = deadline == long.MaxValue ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
            var request = new PollRequest { Fd = fd, Events = events };
            var ready = poll(&request, 1, wait);
            // Ready, or an error or hang-up that the next recv or send reports.
            if (ready > 0) return;
            if (ready == 0) throw new IOException($"timed out {doing} the connection after {timeout} ms", new SocketException((int)SocketError.TimedOut));
            var error = Marshal.GetLastPInvokeError();
            if (error != Interrupted) throw Failed(error, doing);
        }
    }

    private static IOException Failed(int errno, string doing)
    {
        var socketError = errno switch
        {
            104 => SocketError.ConnectionReset,
            32 => SocketError.Shutdown,
            110 => SocketError.TimedOut,
            _ => SocketError.SocketError,
        };
        return new IOException($"{doing} the connection failed (errno {errno})", new SocketException((int)socketError));
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollRequest
    {
        public int Fd;
        public short Events;
        public short Returned;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int poll(PollRequest* requests, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int epoll_ctl(int epoll, int operation, int fd, void* @event);
}
