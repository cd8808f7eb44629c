namespace TruckeeFs.Testing.Servers;

/// <summary>
/// A test server could not be found, installed or started. The message names the binary, the
/// port and the last lines the server printed, so a failing CI log says what went wrong.
/// </summary>
public sealed class ServerStartException(string message, Exception? inner = null) : Exception(message, inner);
