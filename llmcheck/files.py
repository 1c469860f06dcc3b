"""Every file llmcheck writes, written one way; and the readers of text files.

Reports, the sample journal and the replay cache can hold model output and
prompts, which may be private, so they are all created readable by their
owner only (mode 0600; folders llmcheck creates, parents included, 0700). Reports
are replaced atomically, so a reader sees the old file or the new one, never half of
one. A path is written only when it is a regular file or new (a symlink is followed
to one): a folder, FIFO, device or socket there is refused, never replaced.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from llmcheck.errors import UsageError

if TYPE_CHECKING:
    import yaml

FILE_MODE = 0o600
DIR_MODE = 0o700


class NotUTF8(ValueError):
    """A file that is not UTF-8 text: where the first bad byte is, and whether the
    file is UTF-16 (a common cause on Windows)."""

    def __init__(self, line: int, byte: int, utf16: bool) -> None:
        self.line, self.byte, self.utf16 = line, byte, utf16
        super().__init__(f"not UTF-8 text (byte 0x{byte:02x} on line {line})")


MAX_READ_BYTES = 256 * 1024 * 1024
"""The largest file llmcheck reads (a report, baseline, journal, case or scenario file):
256 MiB, ten times a report of 100,000 samples with long failure messages. Beyond it a
file is refused, never loaded into memory."""


class CannotRead(OSError):
    """A path llmcheck does not read: a folder, FIFO, device or socket (a FIFO would
    block the read forever, ``/dev/zero`` never ends), or a file larger than
    :data:`MAX_READ_BYTES`. An ``OSError``, so every reader's handler of an unreadable
    file reports it; ``strerror`` says why and what is accepted."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))


def read_bounded(path: Path) -> bytes:
    """The bytes of the regular file at ``path``, at most :data:`MAX_READ_BYTES`;
    :class:`CannotRead` for anything else. Opened without blocking, so a FIFO is refused
    instead of waiting for a writer. Every file llmcheck reads comes through here."""
    limit = MAX_READ_BYTES
    too_big = (f"it is larger than {limit:,} bytes, the most llmcheck reads "
               "(llmcheck.files.MAX_READ_BYTES)")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CannotRead(path, f"it is {_kind(info.st_mode)}, not a regular file; "
                                   "llmcheck reads only regular files")
        if info.st_size > limit:
            raise CannotRead(path, too_big)
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit:  # a file that grows while it is read stops at the limit too
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise CannotRead(path, too_big)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_utf8(path: Path) -> str:
    """The text of ``path`` (a UTF-8 BOM allowed), read by :func:`read_bounded`;
    ``OSError`` if it cannot be read, :class:`NotUTF8` if it is not UTF-8."""
    raw = read_bounded(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotUTF8(raw.count(b"\n", 0, exc.start) + 1, raw[exc.start],
                      raw.startswith((b"\xff\xfe", b"\xfe\xff"))) from None


class YAMLDocumentError(ValueError):
    """A YAML text that cannot be read: the problem in one line, and its 1-based line."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.line = line


MAX_ALIAS_NODES = 1_000_000
"""How many nodes YAML aliases may add to a document once expanded (a value an alias
repeats counts each time). Far beyond what a case or scenario file reuses, and far below
an alias bomb: a few lines of ten nested aliases expand to a billion nodes."""


@lru_cache(maxsize=1)
def _safe_loader() -> type[yaml.SafeLoader]:
    """PyYAML's SafeLoader, except that a scalar its tag rejects (``2020-13-01``,
    ``!!int x``, ``!!bool maybe``, an integer of more than 4300 digits) is a
    ConstructorError at the scalar's line instead of a ValueError, KeyError, ...
    Built on first use, so that importing this module does not import PyYAML."""
    import yaml

    class SafeLoader(yaml.SafeLoader):
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.expanded: dict[int, int] = {}  # id(node) -> nodes once aliases expand
            self.written = 0  # nodes composed from the text itself

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
            """The node, refused once aliases make the document grow by more than
            :data:`MAX_ALIAS_NODES` nodes (an alias bomb: nine levels of ten aliases are
            a billion nodes to whatever walks the value), or an alias refers to a node
            that holds it (a structure that contains itself)."""
            event = self.peek_event()
            node = super().compose_node(parent, index)
            if isinstance(event, yaml.AliasEvent):
                if id(node) not in self.expanded:
                    raise yaml.composer.ComposerError(
                        None, None, f"alias *{event.anchor} refers to a node that holds it "
                        "(a structure that contains itself)", event.start_mark)
                size = self.expanded[id(node)]
            else:
                self.written += 1
                children = node.value if isinstance(node, yaml.SequenceNode) else [
                    n for pair in node.value for n in pair] if isinstance(
                        node, yaml.MappingNode) else []
                size = 1 + sum(self.expanded[id(c)] for c in children)
                self.expanded[id(node)] = size
            if size - self.written > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases expand the document by more than "
                    f"{MAX_ALIAS_NODES:,} nodes (an alias bomb?); write the values out or "
                    "use fewer aliases", event.start_mark)
            return node

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, TypeError, AttributeError, IndexError, KeyError,
                    OverflowError) as exc:
                value = f" {node.value!r}"[:60] if isinstance(node, yaml.ScalarNode) else ""
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read {node.tag.rsplit(':', 1)[-1]} value{value} ({exc})",
                    node.start_mark) from None

    return SafeLoader


def yaml_document(text: str) -> tuple[Any, yaml.Node | None]:
    """The value of the single YAML document in ``text`` and its node (for the lines of
    later errors); a :class:`YAMLDocumentError` for anything else: a syntax error, a
    character YAML does not allow, a value its tag rejects, nesting too deep to parse.
    Scenario files and case files are both read through here."""
    import yaml

    try:
        loader = _safe_loader()(text)
        try:
            node = loader.get_single_node()
            return (loader.construct_document(node) if node is not None else None), node
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f", {exc.context} on line {exc.context_mark.line + 1}"
        raise YAMLDocumentError(problem, mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise YAMLDocumentError(f"character #x{exc.character:04x} is not allowed in YAML "
                                "(a control character)", line) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every YAMLError is one of the above
        raise YAMLDocumentError(" ".join(str(exc).split())) from None
    except RecursionError:
        raise YAMLDocumentError("nested too deeply") from None


def directory_problem(path: Path) -> str | None:
    """Why llmcheck could not create or write files in folder ``path``, or None.
    Creates nothing: a run that never writes a report leaves no folder behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


class NotARegularFile(UsageError, OSError):
    """An output path that names a folder, a FIFO, a device or a socket. Writing there
    would replace it (a device node became a plain file) or block (a FIFO nobody reads),
    so llmcheck refuses. An ``OSError`` too, so every writer's handler of a failed write
    covers it, and a usage error, so the command line exits 2 with its message."""

    def __init__(self, path: Path, kind: str) -> None:
        reason = (f"it is {kind}, not a regular file; llmcheck writes only to a regular "
                  "file or a new path")
        OSError.__init__(self, errno.EINVAL, reason, str(path))
        self.message = f"cannot write {path}: {reason}"

    def __str__(self) -> str:
        return self.message


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def write_error(exc: OSError) -> str:
    """A failed write in words, with the OS's name for it, for a warning that already
    names the path: ``No space left on device (ENOSPC)``."""
    if isinstance(exc, NotARegularFile) or not exc.strerror:
        return exc.strerror or str(exc)
    code = errno.errorcode.get(exc.errno or 0)
    return f"{exc.strerror} ({code})" if code else exc.strerror


def _kind(mode: int) -> str:
    """What a file of ``mode`` is, in words: ``a FIFO (named pipe)``."""
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _refuse_unless_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotARegularFile(path, _kind(mode))


def output_target(path: Path) -> Path:
    """The file a write to ``path`` lands in: ``path`` itself or, when it is a symlink,
    the file it leads to (a dangling one: the new file it names), so that a link is
    followed, never replaced. :class:`NotARegularFile` when that exists and is not a
    regular file. Every writer below comes through here."""
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    _refuse_unless_regular(path, mode)
    return target


def ensure_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each with :data:`DIR_MODE` whatever the
    umask (a parent made on the way, such as ``reports/`` for the journal, holds the
    same private files); a folder that already exists keeps its mode."""
    if path.is_dir():
        return
    if path.parent != path:
        ensure_dir(path.parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if path.is_dir():  # another process (an xdist worker) made it meanwhile
            return
        raise
    os.chmod(path, DIR_MODE)


def _open_regular(path: Path, flags: int) -> int:
    """A descriptor of the regular file at ``path`` (see :func:`output_target`), created
    with :data:`FILE_MODE` if new. Opened non-blocking and checked again once open, so a
    FIFO put there meanwhile is refused instead of blocking the session."""
    target = output_target(path)
    ensure_dir(target.parent)
    fd = os.open(target, flags | os.O_CREAT | os.O_NONBLOCK, FILE_MODE)
    try:
        _refuse_unless_regular(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private(path: Path, mode: str = "a") -> IO[Any]:
    """Open a text file for writing, created with :data:`FILE_MODE` if new."""
    fd = _open_regular(path, os.O_WRONLY | (os.O_APPEND if "a" in mode else os.O_TRUNC))
    return os.fdopen(fd, mode, encoding="utf-8")


def create_private(path: Path) -> None:
    """Make sure ``path`` exists with :data:`FILE_MODE` (for files another library
    opens, such as the sqlite cache); an existing file keeps its mode."""
    os.close(_open_regular(path, os.O_WRONLY))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half
    (a symlink is followed: the file it leads to is replaced)."""
    target = output_target(path)
    ensure_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
