namespace TruckeeFs.Operations;

/// <summary>The outcome of one self-test: its name, whether it passed, and what it found or why it failed.</summary>
public sealed record SelfTestResult(string Name, bool Passed, string Detail);
