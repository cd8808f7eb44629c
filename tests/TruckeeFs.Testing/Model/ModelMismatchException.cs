namespace TruckeeFs.Testing.Model;

/// <summary>
/// The system under test and the reference disagreed. The message holds everything needed to
/// replay: the seed, the step, the disagreement and the operations that led to it.
/// </summary>
public sealed class ModelMismatchException : Exception
{
    /// <summary>Creates the exception; the message is composed from the parts.</summary>
    public ModelMismatchException(int seed, int step, string detail, IReadOnlyList<string> recentOperations)
        : base(Compose(seed, step, detail, recentOperations))
    {
        Seed = seed;
        Step = step;
        Detail = detail;
        RecentOperations = recentOperations;
    }

    /// <summary>The seed of the run: <c>new ModelChecker(sut, reference, Seed).Run(Step)</c> on fresh roots replays it.</summary>
    public int Seed { get; }

    /// <summary>The step (1-based) at which the disagreement was seen.</summary>
    public int Step { get; }

    /// <summary>What differed.</summary>
    public string Detail { get; }

    /// <summary>The last operations before and including the failing one, oldest first, with the reference's results.</summary>
    public IReadOnlyList<string> RecentOperations { get; }

    private static string Compose(int seed, int step, string detail, IReadOnlyList<string> recent) =>
        $"Model mismatch at step {step} (seed {seed}; replay with new ModelChecker(sut, reference, {seed}).Run({step}) on fresh roots):{Environment.NewLine}" +
        $"{detail}{Environment.NewLine}Last {recent.Count} operations (result shown is the reference's):{Environment.NewLine}  " +
        string.Join(Environment.NewLine + "  ", recent);
}
