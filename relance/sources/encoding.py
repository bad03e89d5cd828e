"""Text encodings of ledger files: detect them, and hand DuckDB a UTF-8 file whatever the source wrote.

Why this module exists: DuckDB's ``read_csv`` reads UTF-8 (and a few others) only, while real ledger exports
are often Windows-1252 (Excel "CSV (séparateur: point-virgule)", Sage, Cegid). Guessing wrong silently
corrupts names ("SociÃ©tÃ©") or makes DuckDB fail the whole file, so:

* a BOM wins (``utf-8-sig``, ``utf-16``, ``utf-32``);
* otherwise the *whole* file is checked as UTF-8 by streaming it through an incremental decoder (UTF-8 has
  enough structure that a file that decodes is UTF-8; a sample would miss the one accented name on line
  900,000);
* a file that is not UTF-8 goes to charset-normalizer on a sample (the head plus a window around the first
  non-UTF-8 byte). charset-normalizer ranks exotic code pages first on short, mostly-ASCII ledger samples
  (``mac_latin2`` for plain French Windows-1252 text) and merges code pages that decode the sample
  identically, so Western code pages are tried first and ``cp1252`` is preferred when it is among the
  equivalent ones;
* non-UTF-8 files are transcoded to a temporary UTF-8 file in 1 MiB chunks (never whole in memory);
* an FEC is decoded in the same order as :func:`decode_bytes` (UTF-8, else the first of the same Western code
  pages that decodes it, so both readers share one order of preference), streaming: :func:`stream_encoding`
  finds the encoding without holding the file, :func:`decoded_chunks` yields its text 1 MiB at a time.

Undecodable bytes raise :class:`~relance.sources.base.SourceError` naming the file, line, byte offset and byte.
"""

from __future__ import annotations

import codecs
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from relance.sources.base import SourceError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
SAMPLE_BYTES = 1 << 16
# Code pages of Western ledgers, most likely first. Used to isolate charset-normalizer's search.
WESTERN_CODEPAGES: tuple[str, ...] = ("cp1252", "iso8859_15", "latin_1", "cp1250", "cp850", "mac_roman")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8"})


@dataclass(frozen=True)
class DecodeProblem:
    """Where a byte stream stops decoding: 1-based line, 0-based byte offset, and the offending bytes."""

    line: int
    offset: int
    bad_bytes: bytes


def normalize_encoding(name: str) -> str:
    """Python's canonical codec name (``'UTF8'`` -> ``'utf-8'``); ``SourceError`` for an unknown codec."""
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise SourceError(f"unknown encoding {name!r} (expected a Python codec name such as utf-8, cp1252)") from exc


def bom_encoding(head: bytes) -> str | None:
    """Encoding announced by a byte-order mark at the start of ``head``, if any."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return None


class _Undecodable(Exception):
    """Raised by :func:`_decoded_chunks` where the bytes stop decoding."""

    def __init__(self, problem: DecodeProblem) -> None:
        super().__init__(problem)
        self.problem = problem


def _decoded_chunks(path: Path, encoding: str) -> Iterator[str]:
    """The text of ``path`` decoded 1 MiB at a time; :class:`_Undecodable` says where it stops decoding."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset, lines = 0, 1
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(CHUNK_BYTES)
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's buffered tail + this chunk; its start is close enough to name a line.
                pending = len(exc.object) - len(chunk)
                start = max(exc.start - pending, 0)
                problem = DecodeProblem(
                    line=lines + chunk[:start].count(b"\n"),
                    offset=offset + start,
                    bad_bytes=bytes(exc.object[exc.start : exc.end]),
                )
                raise _Undecodable(problem) from exc
            yield text
            if final:
                return
            lines += chunk.count(b"\n")
            offset += len(chunk)


def decoded_chunks(path: Path, encoding: str) -> Iterator[str]:
    """The text of ``path`` 1 MiB at a time (a BOM is dropped by ``utf-8-sig``).

    Raises:
        SourceError: the bytes do not decode, naming line and byte offset.
    """
    try:
        yield from _decoded_chunks(path, encoding)
    except _Undecodable as exc:
        p = exc.problem
        raise SourceError(
            f"{path}: undecodable bytes {p.bad_bytes!r} at line {p.line} (byte offset {p.offset}) for {encoding}"
        ) from exc


def stream_encoding(path: Path) -> str:
    """What :func:`decode_bytes` would choose for the file's bytes, found by streaming the file (never whole)."""
    for encoding in ("utf-8-sig", *WESTERN_CODEPAGES):
        if find_decode_problem(path, encoding) is None:
            return encoding
    raise AssertionError("iso8859_15 decodes every byte")  # pragma: no cover


def find_decode_problem(path: Path, encoding: str) -> DecodeProblem | None:
    """First position where ``path`` does not decode as ``encoding``, streaming; ``None`` if it all decodes."""
    try:
        for _ in _decoded_chunks(path, encoding):
            pass
    except _Undecodable as exc:
        return exc.problem
    return None


def _sample(path: Path, around: int | None) -> bytes:
    """The head of the file, plus a window around byte ``around`` (where the interesting bytes are)."""
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
        if around is None or around < SAMPLE_BYTES:
            return head
        fh.seek(max(around - SAMPLE_BYTES // 2, 0))
        window = fh.read(SAMPLE_BYTES)
    # cut the window at line boundaries so no multi-byte character is split
    first_nl, last_nl = window.find(b"\n"), window.rfind(b"\n")
    if 0 <= first_nl < last_nl:
        window = window[first_nl + 1 : last_nl + 1]
    return head + b"\n" + window


def guess_legacy_encoding(sample: bytes) -> str | None:
    """Best code page for a non-UTF-8 sample: Western code pages first (``cp1252`` preferred), then any."""
    matches = list(charset_normalizer.from_bytes(sample, cp_isolation=list(WESTERN_CODEPAGES)))
    if matches:
        # charset-normalizer often scores cp1250 and cp1252 identically on Western text ('è' is 'č' in cp1250):
        # among the equally good matches, take the most common code page, not the first one it lists
        least_chaos = min(m.chaos for m in matches)
        good = [m for m in matches if m.chaos <= least_chaos + 0.01]
        top = max(m.coherence for m in good)
        equivalent = {
            normalize_encoding(e)
            for m in good
            if m.coherence >= top - 0.01
            for e in [m.encoding, *m.could_be_from_charset]
        }
        for preferred in WESTERN_CODEPAGES:
            if normalize_encoding(preferred) in equivalent:
                return normalize_encoding(preferred)
        return normalize_encoding(good[0].encoding)
    best = charset_normalizer.from_bytes(sample).best()
    return normalize_encoding(best.encoding) if best is not None else None


def detect_encoding(path: Path) -> str:
    """The encoding of ``path``: BOM, else UTF-8 if the whole file decodes, else charset-normalizer's guess.

    Raises:
        SourceError: the bytes match no known encoding.
    """
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(4)
    announced = bom_encoding(head)
    if announced:
        return announced
    problem = find_decode_problem(path, "utf-8")
    if problem is None:
        return "utf-8"
    guess = guess_legacy_encoding(_sample(path, problem.offset))
    if guess is None:
        raise SourceError(
            f"{path}: undecodable bytes {problem.bad_bytes!r} at line {problem.line} (byte offset "
            f"{problem.offset}): not UTF-8 and no known encoding fits; set the profile's encoding"
        )
    log.info("%s: not UTF-8 (line %d), detected %s", path.name, problem.line, guess)
    return guess


def transcode_to_utf8(src: Path, encoding: str, dest: Path) -> None:
    """Rewrite ``src`` (in ``encoding``) as UTF-8 into ``dest``, 1 MiB at a time.

    Raises:
        SourceError: a byte sequence does not decode, naming line and byte offset.
    """
    with dest.open("wb") as fout:
        try:
            for text in _decoded_chunks(src, encoding):
                fout.write(text.encode("utf-8"))
        except _Undecodable as exc:
            p = exc.problem
            raise SourceError(
                f"{src}: undecodable bytes {p.bad_bytes!r} at line {p.line} (byte offset {p.offset}) for encoding "
                f"{encoding}; set the profile's encoding to the one the file was written in (or 'auto')"
            ) from exc


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Text of a file held in memory, and the encoding that read it: UTF-8 (with or without BOM) first, then the
    Western code pages in :data:`WESTERN_CODEPAGES` order (cp1252, then ISO-8859-15, which maps every byte: this
    never fails).

    Why this order: a single-byte file almost never happens to be valid UTF-8, while any byte string is valid
    single-byte text, so trying UTF-8 first is what tells them apart. The FEC reader uses it (an FEC is read whole).
    """
    for encoding in ("utf-8-sig", *WESTERN_CODEPAGES):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("iso8859_15 decodes every byte")  # pragma: no cover


def utf8_view(path: Path, encoding: str = "auto", *, workdir: Path | None = None) -> tuple[Path, str]:
    """A UTF-8 file with the content of ``path``, and the encoding the source was read as.

    Returns ``path`` itself when it is already UTF-8 (with or without BOM: DuckDB skips a UTF-8 BOM), else a
    transcoded copy in ``workdir`` (a new temporary directory when ``None``; the caller owns its cleanup).

    Raises:
        SourceError: forced ``encoding`` does not fit the bytes, unknown codec, or undecodable bytes.
    """
    path = Path(path)
    if encoding == "auto":
        enc = detect_encoding(path)
    else:
        enc = normalize_encoding(encoding)
        with path.open("rb") as fh:
            announced = bom_encoding(fh.read(4))
        if enc == "utf-8" and announced == "utf-8-sig":
            enc = "utf-8-sig"
    if enc in _UTF8_NAMES or enc == "utf-8-sig":
        problem = find_decode_problem(path, "utf-8")
        if problem is not None:
            guess = guess_legacy_encoding(_sample(path, problem.offset))
            hint = f"it looks like {guess}: set encoding: {guess} (or auto)" if guess else "set the right encoding"
            raise SourceError(
                f"{path}: not valid UTF-8 at line {problem.line} (byte offset {problem.offset}, bytes "
                f"{problem.bad_bytes!r}) although encoding {encoding!r} was requested; {hint}"
            )
        return path, enc
    if encoding != "auto" and looks_like_utf8_text(path):
        log.warning(
            "%s: encoding %s was forced but the file is valid UTF-8 with accented characters; "
            "text may come out garbled (use encoding: auto)",
            path,
            enc,
        )
    target_dir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="relance-utf8-"))
    dest = target_dir / f"{path.stem}.utf8{path.suffix}"
    transcode_to_utf8(path, enc, dest)
    log.info("%s: transcoded from %s to UTF-8 in %s", path.name, enc, dest)
    return dest, enc


def looks_like_utf8_text(path: Path) -> bool:
    """True when ``path`` is valid UTF-8 and holds non-ASCII text (so a forced single-byte codec is suspect)."""
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if sample.isascii():
        return False
    return find_decode_problem(path, "utf-8") is None
