using System.Text;
using TruckeeFs.Meta;

namespace TruckeeFs.Tests.Meta;

/// <summary>
/// The encodings MySql.Data looks up for every column of every result: answered as .NET answers
/// them, each name resolved once.
/// </summary>
public sealed class MySqlDriverTests
{
    [Fact]
    public void Each_name_gets_the_usual_answer_and_is_resolved_once()
    {
        var encodings = new MySqlDriver.RememberedEncodings();
        string[] names = ["us-ascii", "utf-8", "iso-8859-1", "utf-16"];

        foreach (var name in names)
        {
            var usual = Encoding.GetEncoding(name);
            Assert.Same(usual, encodings.GetEncoding(name));
            Assert.Same(usual, encodings.GetEncoding(name));
            Assert.Same(usual, encodings.GetEncoding(name.ToUpperInvariant()));
        }

        Assert.Equal(names.Length, encodings.Resolved);
    }

    [Fact]
    public void Unknown_names_and_code_page_numbers_are_left_to_the_usual_chain()
    {
        var encodings = new MySqlDriver.RememberedEncodings();

        Assert.Null(encodings.GetEncoding("no-such-encoding"));
        Assert.Null(encodings.GetEncoding(20127));
        Assert.Throws<ArgumentException>(() => Encoding.GetEncoding("no-such-encoding"));
    }

    [Fact]
    public void Once_registered_it_answers_through_Encoding_without_asking_itself_again()
    {
        MySqlDriver.Prepare();
        MySqlDriver.Prepare();

        Assert.Same(Encoding.ASCII, Encoding.GetEncoding("us-ascii"));
        Assert.Same(Encoding.UTF8, Encoding.GetEncoding("utf-8"));
        Assert.Throws<ArgumentException>(() => Encoding.GetEncoding("no-such-encoding"));
    }
}
