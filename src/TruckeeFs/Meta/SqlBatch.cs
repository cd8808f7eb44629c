using System.Globalization;
using System.Text;
using Dapper;

namespace TruckeeFs.Meta;

/// <summary>
/// Statements sent to the database as one command: one round trip to a server for all of them.
/// Each value is bound as a parameter of its own (@p0, @p1, ...), so that statements written
/// apart cannot clash over parameter names.
/// </summary>
internal sealed class SqlBatch
{
    /// <summary>Statements per command at most: bounds the text, and SQLite's parameters per command.</summary>
    public const int MaxStatements = 256;

    private readonly StringBuilder _sql = new();
    private int _parameters;

    public DynamicParameters Parameters { get; } = new();

    public int Count { get; private set; }

    public bool IsFull => Count >= MaxStatements;

    public string Sql => _sql.ToString();

    /// <summary>A new parameter holding <paramref name="value"/>: its name, to write into a statement.</summary>
    public string Bind(object? value)
    {
        var name = "p" + _parameters++.ToString(CultureInfo.InvariantCulture);
        Parameters.Add(name, value);
        return "@" + name;
    }

    /// <summary>Parameters for each of <paramref name="values"/>, as a list for IN.</summary>
    public string BindList<T>(IEnumerable<T> values) => "(" + string.Join(", ", values.Select(v => Bind(v))) + ")";

    public void Add(string statement)
    {
        if (Count > 0) _sql.Append(";\n");
        _sql.Append(statement);
        Count++;
    }
}
