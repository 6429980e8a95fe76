"""Append-only JSON-lines files, plain or compressed (gzip members or zstd frames, one per appended chunk), read as a
stream with each line's location, read back one line at a location, and cut back to their last complete chunk.

A chunk is written with one write and fsynced, so a kill can tear only the last chunk: readers skip a torn tail
(a plain line without its newline, an incomplete member or frame) and the writer cuts it off before appending.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from harness.core.errors import ConfigError

Compression = Literal["none", "gzip", "zstd"]
SUFFIXES: dict[Compression, str] = {"none": "", "gzip": ".gz", "zstd": ".zst"}
READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Location:
    """Where a line starts: the byte offset of its chunk (plain files: of the line itself) and its offset inside
    the chunk's decompressed bytes (0 for plain files)."""

    chunk: int
    offset: int


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise ConfigError("zstd-compressed samples need the zstandard package: pip install zstandard") from None
    return zstandard


def compression_of(path: Path) -> Compression:
    """The compression a file's name says (.gz, .zst, or none)."""
    return "gzip" if path.suffix == ".gz" else "zstd" if path.suffix == ".zst" else "none"


def compress(data: bytes, compression: Compression) -> bytes:
    """One chunk as written: the bytes themselves, one gzip member or one zstd frame."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return bytes(_zstd().ZstdCompressor(level=3, write_content_size=True).compress(data))
    return data


def new_file_mode() -> int:
    """The mode `open()` gives a new file (0o666 less the umask): what a file written through a temporary file and a
    rename gets too, instead of mkstemp's 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _decompressor(compression: Compression) -> Any:
    return zlib.decompressobj(31) if compression == "gzip" else _zstd().ZstdDecompressor().decompressobj()


class LinesFile:
    """A JSON-lines file, appended in chunks; its compression follows its name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.compression = compression_of(path)

    def append(self, lines: list[str]) -> None:
        """Append lines (each without its newline) as one chunk, flushed to disk before returning."""
        data = compress("".join(line + "\n" for line in lines).encode("utf-8"), self.compression)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """(byte offset, decompressed bytes) of every complete chunk; a plain file is one chunk per block of whole
        lines. A torn tail is not yielded."""
        for start, _, data in self._spans():
            yield start, data

    def _spans(self) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, decompressed bytes) of every complete chunk."""
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            yield from (self._plain_spans(handle) if self.compression == "none" else self._compressed_spans(handle))

    @staticmethod
    def _plain_spans(handle: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
        offset, pending = 0, b""
        while block := handle.read(READ_BLOCK):
            data = pending + block
            end = data.rfind(b"\n") + 1
            if end:
                yield offset, offset + end, data[:end]
            offset, pending = offset + end, data[end:]

    def _compressed_spans(self, handle: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
        offset, buffer = 0, b""
        while True:
            decoder, parts, used = _decompressor(self.compression), [], 0
            while not decoder.eof:
                if not buffer:
                    buffer = handle.read(READ_BLOCK)
                    if not buffer:
                        return  # nothing left, or a torn last chunk
                parts.append(decoder.decompress(buffer))
                used += len(buffer) - len(decoder.unused_data)
                buffer = decoder.unused_data
            yield offset, offset + used, b"".join(parts)
            offset += used

    def lines(self) -> Iterator[tuple[Location, bytes]]:
        """Every complete line (without its newline) with its location."""
        plain = self.compression == "none"
        for chunk, data in self.chunks():
            start = 0
            while start < len(data):
                end = data.index(b"\n", start)
                yield (Location(chunk + start, 0) if plain else Location(chunk, start)), data[start:end]
                start = end + 1

    def read_at(self, location: Location) -> bytes:
        """The line at a location (as `lines` gave it)."""
        with self.path.open("rb") as handle:
            handle.seek(location.chunk)
            if self.compression == "none":
                return handle.readline().rstrip(b"\n")
            decoder, parts = _decompressor(self.compression), []
            while not decoder.eof and (block := handle.read(READ_BLOCK)):
                parts.append(decoder.decompress(block))
        data = b"".join(parts)
        return data[location.offset : data.index(b"\n", location.offset)]

    def complete_bytes(self) -> int:
        """The length of the file up to the end of its last complete chunk (a torn tail excluded)."""
        return max((end for _, end, _ in self._spans()), default=0)

    def torn(self) -> bool:
        """Whether the file ends in an incomplete chunk or line."""
        return self.path.is_file() and self.complete_bytes() != self.path.stat().st_size

    def repair(self) -> None:
        """Cut a torn tail off (the writer does, before appending)."""
        if self.path.is_file():
            good = self.complete_bytes()
            if good != self.path.stat().st_size:
                with self.path.open("r+b") as handle:
                    handle.truncate(good)
