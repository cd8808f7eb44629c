namespace TruckeeFs.Operations;

/// <summary>How far a long operation (fsck, gc) is: <see cref="Done"/> of <see cref="Total"/> items of a phase, and the bytes they hold.</summary>
public readonly record struct ProgressReport(string Phase, long Done, long Total, long Bytes);
