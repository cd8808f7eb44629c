using TruckeeFs.Meta;

namespace TruckeeFs.Tests;

internal static class CommitContentExtension
{
    /// <summary>One file's <see cref="IMetaStore.CommitContents"/>: 0, or ENOENT if the inode is gone (updated is then null).</summary>
    public static int CommitContent(this IMetaStore store, long inode, ContentCommit commit, out Inode updated, out IReadOnlyList<string> unreferenced)
    {
        updated = store.CommitContents([(inode, commit)], out unreferenced)[0]!;
        return updated is null ? Errno.ENOENT : 0;
    }
}
