using TruckeeFs.Testing.Posix;

namespace TruckeeFs.Testing.Model;

public sealed partial class ModelChecker
{
    private void Create()
    {
        var path = PickPath(IsFile, existing: 0.25, fresh: 0.65);
        var flags = Sys.O_CREAT | PickAccessMode() | (Chance(0.3) ? Sys.O_EXCL : 0) | (Chance(0.3) ? Sys.O_TRUNC : 0);
        var mode = OneOf(ModelNames.FileModes);
        Both($"create {Show(path)} {FlagsText(flags)} {ModelNames.Octal(mode)}", side =>
        {
            var errno = Sys.Open(At(side, path), flags, mode, out var fd);
            return Outcome.Of(errno == 0 ? Sys.Close(fd) : errno);
        });
    }

    private void WritePath()
    {
        var path = PickPath(IsFile, existing: 0.8, fresh: 0.12);
        var flags = Sys.O_WRONLY | (Chance(0.15) ? Sys.O_APPEND : 0) | (Chance(0.2) ? Sys.O_CREAT : 0);
        var offset = PickOffset(SizeOf(path));
        var data = PickData(offset);
        Both($"write {Show(path)} {FlagsText(flags)} at {offset} len {data.Length}", side =>
        {
            var errno = Sys.Open(At(side, path), flags, 0b110_100_100, out var fd);
            if (errno != 0)
            {
                return Outcome.Of(errno);
            }

            errno = Sys.PWrite(fd, data, offset, out var written);
            var closed = Sys.Close(fd);
            return Outcome.Of(errno != 0 ? errno : closed, $"wrote {written}");
        });
    }

    private void ReadPath()
    {
        var path = PickPath(IsFile, existing: 0.85, fresh: 0.05);
        var offset = PickOffset(SizeOf(path));
        var length = PickLength();
        Both($"read {Show(path)} at {offset} len {length}", side =>
        {
            var errno = Sys.Open(At(side, path), Sys.O_RDONLY, out var fd);
            if (errno != 0)
            {
                return Outcome.Of(errno);
            }

            var buffer = new byte[length];
            errno = Sys.PReadFully(fd, buffer, offset, out var read);
            _ = Sys.Close(fd);
            return Outcome.Of(errno, $"read {read} sha {Hash(buffer.AsSpan(0, read))}");
        }, mutates: false);
    }

    private void TruncatePath()
    {
        var path = PickPath(IsFile, existing: 0.8, fresh: 0.05);
        var length = PickTruncateSize(SizeOf(path));
        Both($"truncate {Show(path)} to {length}", side => Outcome.Of(Sys.Truncate(At(side, path), length)));
    }

    private void Rename()
    {
        byte[] from;
        byte[] to;
        uint flags = 0;
        var variant = _random.Next(8);
        switch (variant)
        {
            case 0:
                // A file onto another existing file: the target is replaced.
                from = PickPath(IsFile, existing: 0.9, fresh: 0);
                to = PickPath(IsFile, existing: 0.9, fresh: 0.1);
                break;
            case 1:
                // A directory onto a directory: allowed only onto an empty one (else ENOTEMPTY).
                from = PickPath(IsDirectory, existing: 0.9, fresh: 0);
                to = PickPath(IsDirectory, existing: 0.9, fresh: 0.1);
                break;
            case 2 when PickNode(IsDirectory) is { } directory:
                // A directory into its own subtree: EINVAL.
                from = directory.Path;
                var inside = PickNode(n => n.IsDirectory && n.Path.AsSpan().StartsWith([.. directory.Path, (byte)'/']))?.Path ?? directory.Path;
                to = ModelNames.Join(inside, OneOf(ModelNames.Pool));
                Both($"rename {Show(from)} -> {Show(to)}", side => Outcome.Of(Sys.Rename(At(side, from), At(side, to))));
                return;
            case 3:
                flags = Sys.RENAME_NOREPLACE;
                from = PickPath(IsAnything, existing: 0.9, fresh: 0);
                to = PickPath(IsAnything, existing: 0.5, fresh: 0.45);
                break;
            case 4:
                flags = Sys.RENAME_EXCHANGE;
                from = PickPath(IsAnything, existing: 0.95, fresh: 0);
                to = PickPath(IsAnything, existing: 0.85, fresh: 0.1);
                break;
            case 5 when _open.Count > 0:
                // Move a file that is open, so later descriptor operations act on a renamed file.
                from = OneOf(_open).OpenedAs;
                to = PickFreshPath();
                break;
            default:
                from = PickPath(IsAnything, existing: 0.85, fresh: 0.05);
                to = PickPath(IsAnything, existing: 0.3, fresh: 0.65);
                break;
        }

        if (!FitsDepth(from, to) || (flags == Sys.RENAME_EXCHANGE && !FitsDepth(to, from)))
        {
            // Moving a deep subtree deeper could approach PATH_MAX, where the two roots' different
            // lengths would make them disagree; try a path that stays shallow instead.
            to = ModelNames.Join([], OneOf(ModelNames.Pool));
            if (!FitsDepth(from, to) || (flags == Sys.RENAME_EXCHANGE && !FitsDepth(to, from)))
            {
                Stat();
                return;
            }
        }

        var name = flags switch { Sys.RENAME_NOREPLACE => "renameat2(NOREPLACE)", Sys.RENAME_EXCHANGE => "renameat2(EXCHANGE)", _ => "rename" };
        Both($"{name} {Show(from)} -> {Show(to)}", side =>
            Outcome.Of(flags == 0 ? Sys.Rename(At(side, from), At(side, to)) : Sys.RenameAt2(At(side, from), At(side, to), flags)));
    }

    private void Link()
    {
        // Directories too: link(2) refuses them with EPERM. Symlinks are linked themselves.
        var from = PickPath(n => !n.IsDirectory || Chance(0.2), existing: 0.9, fresh: 0.05);
        var to = PickPath(IsAnything, existing: 0.15, fresh: 0.8);
        Both($"link {Show(from)} -> {Show(to)}", side => Outcome.Of(Sys.Link(At(side, from), At(side, to))));
    }

    private void Unlink()
    {
        var path = _open.Count > 0 && Chance(0.3)
            ? OneOf(_open).OpenedAs
            : PickPath(n => !n.IsDirectory || Chance(0.15), existing: 0.85, fresh: 0.05);
        Both($"unlink {Show(path)}", side => Outcome.Of(Sys.Unlink(At(side, path))));
    }

    private void Mkdir()
    {
        var path = PickPath(IsAnything, existing: 0.12, fresh: 0.8);
        var mode = OneOf(ModelNames.DirModes);
        Both($"mkdir {Show(path)} {ModelNames.Octal(mode)}", side => Outcome.Of(Sys.Mkdir(At(side, path), mode)));
    }

    private void Rmdir()
    {
        var path = PickPath(n => n.IsDirectory || Chance(0.15), existing: 0.85, fresh: 0.05);
        Both($"rmdir {Show(path)}", side => Outcome.Of(Sys.Rmdir(At(side, path))));
    }

    private void Chmod()
    {
        var node = PickNode(IsAnything);
        var path = node?.Path ?? PickOddPath();
        var mode = OneOf(node?.IsDirectory == true ? ModelNames.DirModes : ModelNames.FileModes);
        Both($"chmod {Show(path)} {ModelNames.Octal(mode)}", side => Outcome.Of(Sys.Chmod(At(side, path), mode)));
    }

    private void Symlink()
    {
        var target = OneOf(ModelNames.SymlinkTargets);
        var path = PickPath(IsAnything, existing: 0.1, fresh: 0.85);
        Both($"symlink {Show(path)} -> {Show(target)}", side => Outcome.Of(Sys.Symlink(target, At(side, path))));
    }

    private void ReadLink()
    {
        var path = PickPath(n => n.IsSymlink || Chance(0.2), existing: 0.9, fresh: 0.05);
        Both($"readlink {Show(path)}", side =>
        {
            var errno = Sys.ReadLink(At(side, path), out var target);
            return Outcome.Of(errno, Show(target));
        }, mutates: false);
    }

    private void SetXattr()
    {
        var onSymlink = Chance(0.1) && PickNode(IsSymlink) is not null;
        var path = onSymlink ? PickNode(IsSymlink)!.Path : PickPath(n => !n.IsSymlink, existing: 0.92, fresh: 0.03);
        var name = OneOf(ModelNames.XattrNames);
        var value = new byte[_random.Next(0, 400)];
        _random.NextBytes(value);
        var flags = _random.Next(4) switch { 0 => Sys.XATTR_CREATE, 1 => Sys.XATTR_REPLACE, _ => 0 };
        var call = onSymlink ? "lsetxattr" : "setxattr";
        Both($"{call} {Show(path)} {name} len {value.Length} flags {flags}", side =>
            Outcome.Of(onSymlink ? Sys.LSetXattr(At(side, path), name, value, flags) : Sys.SetXattr(At(side, path), name, value, flags)));
    }

    private void GetXattr()
    {
        var path = PickPath(n => !n.IsSymlink, existing: 0.92, fresh: 0.03);
        var name = OneOf(ModelNames.XattrNames);

        // Size 0 asks for the length; a tiny buffer must fail with ERANGE when the value is longer.
        var bufferSize = _random.Next(3) switch { 0 => 0, 1 => _random.Next(1, 8), _ => 1024 };
        Both($"getxattr {Show(path)} {name} buffer {bufferSize}", side =>
        {
            var buffer = new byte[bufferSize];
            var errno = Sys.GetXattr(At(side, path), name, buffer, out var length);
            return Outcome.Of(errno, bufferSize == 0 ? $"size {length}" : $"len {length} sha {Hash(buffer.AsSpan(0, length))}");
        }, mutates: false);
    }

    private void RemoveXattr()
    {
        var path = PickPath(n => !n.IsSymlink, existing: 0.92, fresh: 0.03);
        var name = OneOf(ModelNames.XattrNames);
        Both($"removexattr {Show(path)} {name}", side => Outcome.Of(Sys.RemoveXattr(At(side, path), name)));
    }

    private void ListXattr()
    {
        var path = PickPath(n => !n.IsSymlink, existing: 0.92, fresh: 0.03);
        Both($"listxattr {Show(path)}", side =>
        {
            var errno = Sys.ListXattr(At(side, path), out var names);
            return Outcome.Of(errno, string.Join(',', names.Where(n => n.StartsWith("user.", StringComparison.Ordinal)).Order(StringComparer.Ordinal)));
        }, mutates: false);
    }

    private void Stat()
    {
        var path = PickPath(IsAnything, existing: 0.8, fresh: 0.1);
        var follow = Chance(0.5);
        Both($"{(follow ? "stat" : "lstat")} {Show(path)}", side =>
        {
            var errno = follow ? Sys.Stat(At(side, path), out var info) : Sys.LStat(At(side, path), out info);
            return Outcome.Of(errno, DescribeStat(info));
        }, mutates: false);
    }

    private void ReadDirectory()
    {
        var path = Chance(0.15) ? [] : PickPath(n => n.IsDirectory || Chance(0.1), existing: 0.85, fresh: 0.05);
        Both($"readdir {Show(path)}", side =>
        {
            var errno = Sys.ReadDirectory(At(side, path), out var entries);
            var names = entries.Where(e => !e.IsDotOrDotDot).Select(e => Show(e.Name)).Order(StringComparer.Ordinal);
            var dots = entries.Count(e => e.IsDotOrDotDot);
            return Outcome.Of(errno, $"[{string.Join(", ", names)}] +{dots} dot entries");
        }, mutates: false);
    }

    private void OpenAndKeep()
    {
        if (_open.Count >= MaxOpenFiles)
        {
            Close(OneOf(_open));
            return;
        }

        var path = PickPath(n => n.IsFile || Chance(0.1), existing: 0.75, fresh: 0.2);
        var flags = PickAccessMode() | (Chance(0.15) ? Sys.O_APPEND : 0) | (Chance(0.25) ? Sys.O_CREAT : 0) | (Chance(0.1) ? Sys.O_TRUNC : 0);
        var fds = new[] { -1, -1 };
        var description = $"open {Show(path)} {FlagsText(flags)} and keep";
        try
        {
            Both(description, side => Outcome.Of(Sys.Open(At(side, path), flags, 0b110_100_100, out fds[side])));
        }
        catch (ModelMismatchException)
        {
            // Only one side opened: do not leak its descriptor.
            foreach (var fd in fds.Where(fd => fd >= 0))
            {
                _ = Sys.Close(fd);
            }

            throw;
        }

        if (fds[Sut] >= 0)
        {
            _open.Add(new OpenFile(fds[Sut], fds[Reference], path, FlagsText(flags)));
        }
    }

    private void FdWrite()
    {
        if (PickOpenFile() is not { } file)
        {
            OpenAndKeep();
            return;
        }

        _ = Sys.FStat(file.Fds[Reference], out var info);
        if (Chance(0.3))
        {
            // write(2) at the descriptor's position, which the earlier writes and reads moved.
            var data = PickData(Math.Min(info.Size, MaxFileSize - 1));
            Both($"fd-write {file.Label} len {data.Length}", side =>
            {
                var errno = Sys.Write(file.Fds[side], data, out var written);
                return Outcome.Of(errno, $"wrote {written}");
            });
            return;
        }

        var offset = PickOffset(info.Size);
        var bytes = PickData(offset);
        Both($"fd-pwrite {file.Label} at {offset} len {bytes.Length}", side =>
        {
            var errno = Sys.PWrite(file.Fds[side], bytes, offset, out var written);
            return Outcome.Of(errno, $"wrote {written}");
        });
    }

    private void FdRead()
    {
        if (PickOpenFile() is not { } file)
        {
            OpenAndKeep();
            return;
        }

        _ = Sys.FStat(file.Fds[Reference], out var info);
        var positional = Chance(0.7);
        var offset = PickOffset(info.Size);
        var length = PickLength();
        Both(positional ? $"fd-pread {file.Label} at {offset} len {length}" : $"fd-read {file.Label} len {length}", side =>
        {
            var buffer = new byte[length];
            var errno = positional ? Sys.PReadFully(file.Fds[side], buffer, offset, out var read) : Sys.Read(file.Fds[side], buffer, out read);
            return Outcome.Of(errno, $"read {read} sha {Hash(buffer.AsSpan(0, read))}");
        }, mutates: false);
    }

    private void FdTruncate()
    {
        if (PickOpenFile() is not { } file)
        {
            OpenAndKeep();
            return;
        }

        _ = Sys.FStat(file.Fds[Reference], out var info);
        var length = PickTruncateSize(info.Size);
        Both($"ftruncate {file.Label} to {length}", side => Outcome.Of(Sys.Ftruncate(file.Fds[side], length)));
    }

    private void FdStat()
    {
        if (PickOpenFile() is not { } file)
        {
            OpenAndKeep();
            return;
        }

        Both($"fstat {file.Label}", side =>
        {
            var errno = Sys.FStat(file.Fds[side], out var info);
            return Outcome.Of(errno, DescribeStat(info));
        }, mutates: false);
    }

    private void FdSync()
    {
        if (PickOpenFile() is not { } file)
        {
            OpenAndKeep();
            return;
        }

        var dataOnly = Chance(0.5);
        Both($"{(dataOnly ? "fdatasync" : "fsync")} {file.Label}", side => Outcome.Of(dataOnly ? Sys.Fdatasync(file.Fds[side]) : Sys.Fsync(file.Fds[side])), mutates: false);
    }

    private void FdClose()
    {
        if (PickOpenFile() is { } file)
        {
            Close(file);
        }
        else
        {
            OpenAndKeep();
        }
    }

    private OpenFile? PickOpenFile() => _open.Count == 0 ? null : OneOf(_open);

    private void Close(OpenFile file)
    {
        _open.Remove(file);
        Both($"close {file.Label}", side => Outcome.Of(Sys.Close(file.Fds[side])));
    }
}
