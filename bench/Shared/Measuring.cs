using System.Globalization;

namespace TruckeeFs.Bench;

/// <summary>What the benchmark programs (bench/DataPath, bench/Engine) measure alike; compiled into each.</summary>
internal static class Measuring
{
    /// <summary>User and system time of all a process's threads, from /proc/PID/stat (clock ticks of 10 ms).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The fields after the command name, which is in parentheses and may hold spaces.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
