using System.Net.Sockets;
using System.Text;

namespace TruckeeFs.Cli;

/// <summary>
/// The sd_notify protocol of a <c>Type=notify</c> systemd service: one datagram to the Unix
/// socket in <c>$NOTIFY_SOCKET</c>. It lets the unit count as started only once the mount
/// answers, while the process stays in the foreground and its log goes to the journal.
/// Outside systemd (no variable) it does nothing.
/// </summary>
internal static class SystemdNotify
{
    /// <summary>Sends <paramref name="state"/> ("READY=1", "STOPPING=1"); failures are ignored, as sd_notify's are.</summary>
    public static void Send(string state)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path)) return;
        // A leading '@' names a socket in the abstract namespace.
        if (path[0] == '@') path = "\0" + path[1..];
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(Encoding.UTF8.GetBytes(state));
        }
        catch (SocketException)
        {
            // systemd went away or the socket is not for us: nothing to tell.
        }
    }
}
