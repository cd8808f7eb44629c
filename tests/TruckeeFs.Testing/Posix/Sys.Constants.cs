namespace TruckeeFs.Testing.Posix;

/// <summary>
/// Constants of the Linux x86-64 C library, under their C names so tests read like the man pages.
/// </summary>
public static partial class Sys
{
    // <fcntl.h> open flags.
    /// <summary>Open for reading only.</summary>
    public const int O_RDONLY = 0;
    /// <summary>Open for writing only.</summary>
    public const int O_WRONLY = 1;
    /// <summary>Open for reading and writing.</summary>
    public const int O_RDWR = 2;
    /// <summary>Mask of the access mode bits.</summary>
    public const int O_ACCMODE = 3;
    /// <summary>Create the file if it does not exist.</summary>
    public const int O_CREAT = 0x40;
    /// <summary>With O_CREAT: fail with EEXIST if the name exists.</summary>
    public const int O_EXCL = 0x80;
    /// <summary>Truncate a regular file to length 0.</summary>
    public const int O_TRUNC = 0x200;
    /// <summary>Every write goes to the end of the file.</summary>
    public const int O_APPEND = 0x400;
    /// <summary>Do not block (FIFOs, locks).</summary>
    public const int O_NONBLOCK = 0x800;
    /// <summary>Bypass the page cache: every read and write reaches the filesystem.</summary>
    public const int O_DIRECT = 0x4000;
    /// <summary>Fail with ENOTDIR unless the path is a directory.</summary>
    public const int O_DIRECTORY = 0x10000;
    /// <summary>Fail with ELOOP if the last component is a symlink.</summary>
    public const int O_NOFOLLOW = 0x20000;
    /// <summary>Close on exec. <see cref="Open(PosixPath, int, uint, out int)"/> always adds it.</summary>
    public const int O_CLOEXEC = 0x80000;

    // <sys/stat.h> file types and mode bits.
    /// <summary>Mask of the file type bits of st_mode.</summary>
    public const uint S_IFMT = 0xF000;
    /// <summary>Socket.</summary>
    public const uint S_IFSOCK = 0xC000;
    /// <summary>Symbolic link.</summary>
    public const uint S_IFLNK = 0xA000;
    /// <summary>Regular file.</summary>
    public const uint S_IFREG = 0x8000;
    /// <summary>Block device.</summary>
    public const uint S_IFBLK = 0x6000;
    /// <summary>Directory.</summary>
    public const uint S_IFDIR = 0x4000;
    /// <summary>Character device.</summary>
    public const uint S_IFCHR = 0x2000;
    /// <summary>FIFO.</summary>
    public const uint S_IFIFO = 0x1000;
    /// <summary>Permission, set-id and sticky bits (07777).</summary>
    public const uint S_IPERM = 0xFFF;

    // <unistd.h> lseek and access.
    /// <summary>lseek from the start.</summary>
    public const int SEEK_SET = 0;
    /// <summary>lseek from the current position.</summary>
    public const int SEEK_CUR = 1;
    /// <summary>lseek from the end.</summary>
    public const int SEEK_END = 2;
    /// <summary>lseek to the next data at or after the offset.</summary>
    public const int SEEK_DATA = 3;
    /// <summary>lseek to the next hole at or after the offset.</summary>
    public const int SEEK_HOLE = 4;
    /// <summary>access: the file exists.</summary>
    public const int F_OK = 0;
    /// <summary>access: execute/search permission.</summary>
    public const int X_OK = 1;
    /// <summary>access: write permission.</summary>
    public const int W_OK = 2;
    /// <summary>access: read permission.</summary>
    public const int R_OK = 4;

    // *at() calls.
    /// <summary>The "directory" argument of *at calls meaning the current directory.</summary>
    public const int AT_FDCWD = -100;
    /// <summary>Act on a symlink itself rather than on its target.</summary>
    public const int AT_SYMLINK_NOFOLLOW = 0x100;

    // renameat2.
    /// <summary>renameat2: fail with EEXIST if the new name exists.</summary>
    public const uint RENAME_NOREPLACE = 1;
    /// <summary>renameat2: swap the two names atomically; both must exist.</summary>
    public const uint RENAME_EXCHANGE = 2;

    // utimensat.
    /// <summary>tv_nsec value meaning "set to the current time".</summary>
    public const long UTIME_NOW = (1L << 30) - 1;
    /// <summary>tv_nsec value meaning "leave unchanged".</summary>
    public const long UTIME_OMIT = (1L << 30) - 2;

    // <sys/xattr.h>.
    /// <summary>setxattr: fail with EEXIST if the attribute exists.</summary>
    public const int XATTR_CREATE = 1;
    /// <summary>setxattr: fail with ENODATA if the attribute does not exist.</summary>
    public const int XATTR_REPLACE = 2;

    // fallocate modes.
    /// <summary>fallocate: allocate without changing the file size.</summary>
    public const int FALLOC_FL_KEEP_SIZE = 1;
    /// <summary>fallocate: deallocate the range (requires KEEP_SIZE); reads return zeros.</summary>
    public const int FALLOC_FL_PUNCH_HOLE = 2;
    /// <summary>fallocate: zero the range, growing the file unless KEEP_SIZE.</summary>
    public const int FALLOC_FL_ZERO_RANGE = 0x10;

    // flock(2).
    /// <summary>flock: shared lock.</summary>
    public const int LOCK_SH = 1;
    /// <summary>flock: exclusive lock.</summary>
    public const int LOCK_EX = 2;
    /// <summary>flock: fail with EWOULDBLOCK (EAGAIN) instead of waiting.</summary>
    public const int LOCK_NB = 4;
    /// <summary>flock: release.</summary>
    public const int LOCK_UN = 8;

    // fcntl(2) record locks.
    /// <summary>fcntl: report the first lock that would conflict (POSIX, per process).</summary>
    public const int F_GETLK = 5;
    /// <summary>fcntl: take or release a lock, failing with EAGAIN on conflict (POSIX, per process).</summary>
    public const int F_SETLK = 6;
    /// <summary>fcntl: take or release a lock, waiting on conflict (POSIX, per process).</summary>
    public const int F_SETLKW = 7;
    /// <summary>fcntl: F_GETLK for open-file-description locks, which conflict within one process too.</summary>
    public const int F_OFD_GETLK = 36;
    /// <summary>fcntl: F_SETLK for open-file-description locks.</summary>
    public const int F_OFD_SETLK = 37;
    /// <summary>fcntl: F_SETLKW for open-file-description locks.</summary>
    public const int F_OFD_SETLKW = 38;
    /// <summary>Lock type: shared (read) lock.</summary>
    public const short F_RDLCK = 0;
    /// <summary>Lock type: exclusive (write) lock.</summary>
    public const short F_WRLCK = 1;
    /// <summary>Lock type: unlock, and F_GETLK's "no conflict".</summary>
    public const short F_UNLCK = 2;

    // <dirent.h> d_type.
    /// <summary>d_type: unknown, the caller must lstat.</summary>
    public const byte DT_UNKNOWN = 0;
    /// <summary>d_type: FIFO.</summary>
    public const byte DT_FIFO = 1;
    /// <summary>d_type: character device.</summary>
    public const byte DT_CHR = 2;
    /// <summary>d_type: directory.</summary>
    public const byte DT_DIR = 4;
    /// <summary>d_type: block device.</summary>
    public const byte DT_BLK = 6;
    /// <summary>d_type: regular file.</summary>
    public const byte DT_REG = 8;
    /// <summary>d_type: symbolic link.</summary>
    public const byte DT_LNK = 10;
    /// <summary>d_type: socket.</summary>
    public const byte DT_SOCK = 12;

    // <signal.h>.
    /// <summary>Interrupt (Ctrl-C).</summary>
    public const int SIGINT = 2;
    /// <summary>Kill, cannot be caught.</summary>
    public const int SIGKILL = 9;
    /// <summary>Continue a stopped process.</summary>
    public const int SIGCONT = 18;
    /// <summary>Stop, cannot be caught: the process stays but does nothing (a host cut off, as far as others can tell).</summary>
    public const int SIGSTOP = 19;
    /// <summary>Polite termination request.</summary>
    public const int SIGTERM = 15;

    /// <summary>The longest name one directory entry may have on Linux filesystems (bytes).</summary>
    public const int NAME_MAX = 255;
}
