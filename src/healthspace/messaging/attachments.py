"""What a message may carry: a PDF, a PNG or a JPEG, decided by what the bytes are (never
the file name's extension nor the browser's Content-Type), and nothing hidden inside.

Why so strict: an attachment travels from a patient's device to a practice's computers,
where staff open it. A file that is also a program, an archive or a web page (a
"polyglot"), a PDF that runs JavaScript or launches something, or an image that expands
to gigabytes (a decompression bomb) must never arrive there. So:

- the type is detected from the content; anything else is refused;
- images are parsed chunk by chunk / segment by segment (CRCs, lengths, end marker),
  their size in pixels is checked before any decoding, and they are then decoded and
  **re-encoded by Pillow**: what is stored is a new file made from the pixels, without
  metadata (EXIF GPS position, camera serial numbers, comments) or anything appended;
- PDFs are parsed by pypdf; encrypted ones, JavaScript, launch/submit/import actions, an
  /OpenAction other than "go to a page", embedded files, rich media and XFA forms are
  refused, as is anything after the final ``%%EOF`` but whitespace;
- signatures of other formats (ZIP/JAR, executables, HTML/SVG/script, PDF inside an
  image) are looked for wherever they have no business being: image metadata, the
  bytes after an image's end, a PDF outside its compressed streams, a ZIP directory at
  the end of any file (where archive tools look for one).

Pure: bytes in, a ``CheckedAttachment`` or an ``AttachmentRefused`` (with a message to show
the person uploading) out. No Django, no database.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
import warnings
import zlib
from dataclasses import dataclass
from enum import StrEnum

from healthspace.core.errors import InvalidInput

# Decoded size limit against decompression bombs: 40 million pixels (e.g. 8000 x 5000) is
# more than any phone photo or scan that fits the byte limit, and at most ~160 MB to decode.
MAX_PIXELS = 40_000_000
NAME_MAX = 100  # characters of the file name kept, before the extension
# Where archive tools look for a ZIP's end-of-central-directory record: the last 64 KiB
# (its comment may be that long) plus the record itself.
ZIP_TAIL = 65_535 + 22
PDF_HEADER_WINDOW = 1024  # PDF readers accept "%PDF-" anywhere in the first 1024 bytes


class Kind(StrEnum):
    PDF = "application/pdf"
    PNG = "image/png"
    JPEG = "image/jpeg"


EXTENSIONS: dict[Kind, tuple[str, ...]] = {
    Kind.PDF: (".pdf",),
    Kind.PNG: (".png",),
    Kind.JPEG: (".jpg", ".jpeg"),
}
LABELS: dict[Kind, str] = {Kind.PDF: "PDF", Kind.PNG: "PNG image", Kind.JPEG: "JPEG image"}


class AttachmentRefused(InvalidInput):
    """The file cannot be attached; the message says why, in words for the uploader."""


EMPTY = "The selected file is empty"
WRONG_TYPE = "The selected file must be a PDF, PNG or JPEG"
DAMAGED = "The selected file is damaged or incomplete. Save it again and try again"
HIDDEN_CONTENT = (
    "The selected file contains something other than a document or picture (such as a "
    "program, a script or another file hidden inside it), so it cannot be sent"
)
TRAILING_PICTURE = (
    "The selected file has extra data after the end of the picture, so it cannot be sent. "
    "Save the picture again (or take a screenshot of it) and try again"
)
TRAILING_DOCUMENT = (
    "The selected file has extra data after the end of the document, so it cannot be "
    "sent. Save or print it to a new PDF and try again"
)
PDF_ENCRYPTED = "The selected PDF is protected with a password. Remove the password and try again"
PDF_ACTIVE = (
    "The selected PDF contains scripts, actions or attached files, so it cannot be sent. "
    "Print it to a new PDF and try again"
)
TOO_MANY_PIXELS = (
    "The selected picture is too large. Use a picture of at most "
    f"{MAX_PIXELS // 1_000_000} megapixels"
)


def too_big_message(max_bytes: int) -> str:
    return f"The selected file must be smaller than {_size_words(max_bytes)}"


def _size_words(n: int) -> str:
    mb = n / (1024 * 1024)
    if mb >= 1:
        return f"{mb:g} MB" if mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, n // 1024)} KB"


def size_words(n: int) -> str:
    """A file size as people read it: "230 KB", "1.4 MB"."""
    return _size_words(n)


@dataclass(frozen=True)
class CheckedAttachment:
    """A file that passed every check: its safe name, detected type, and the bytes to
    store (re-encoded for images). Only :func:`attachment_check` makes these."""

    name: str
    kind: Kind
    data: bytes

    @property
    def content_type(self) -> str:
        return str(self.kind)

    @property
    def size(self) -> int:
        return len(self.data)


def attachment_check(*, name: str, data: bytes, max_bytes: int) -> CheckedAttachment:
    if not data:
        raise AttachmentRefused(EMPTY)
    if len(data) > max_bytes:
        raise AttachmentRefused(too_big_message(max_bytes))
    kind = detect(data)
    if kind is None:
        raise AttachmentRefused(WRONG_TYPE)
    _no_zip_directory_at_the_end(data)
    if kind is not Kind.PDF and b"%PDF-" in data[:PDF_HEADER_WINDOW]:
        raise AttachmentRefused(HIDDEN_CONTENT)  # also a PDF, to a PDF reader
    if kind is Kind.PDF:
        _pdf_check(data)
        stored = data
    elif kind is Kind.PNG:
        _png_check(data)
        stored = _reencode(data, kind)
    else:
        _jpeg_check(data)
        stored = _reencode(data, kind)
    return CheckedAttachment(name=safe_name(name, kind), kind=kind, data=stored)


def detect(data: bytes) -> Kind | None:
    """The type from the first bytes, strictly at offset 0 (a PDF reader would find a
    header later on, which is exactly how polyglots start)."""
    if data.startswith(b"%PDF-"):
        return Kind.PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind.PNG
    if data.startswith(b"\xff\xd8\xff"):
        return Kind.JPEG
    return None


# --- signatures of what must not hide inside ------------------------------------------

ARCHIVE_SIGNATURES = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"Rar!\x1a\x07", b"7z\xbc\xaf")
PROGRAM_SIGNATURES = (b"\x7fELF", b"This program cannot be run in DOS mode", b"\xca\xfe\xba\xbe")
# Markup a browser or an editor would run or render: looked for case-insensitively.
MARKUP = re.compile(
    rb"<\s*(?:script|html|svg[\s>/]|iframe|object[\s>]|embed[\s>]|body[\s>]|!doctype\s+html|\?php)"
    rb"|javascript:",
    re.IGNORECASE,
)


def _hidden(region: bytes, *, pdf_marker: bool) -> bool:
    if any(sig in region for sig in ARCHIVE_SIGNATURES + PROGRAM_SIGNATURES):
        return True
    if region.startswith(b"MZ"):
        return True
    if pdf_marker and b"%PDF-" in region:
        return True
    return MARKUP.search(region) is not None


def _no_zip_directory_at_the_end(data: bytes) -> None:
    # Archive tools (unzip, Java's jar loader) read a ZIP from its end: a record there
    # makes any file an archive, whatever it starts with.
    if b"PK\x05\x06" in data[-ZIP_TAIL:] or b"PK\x06\x06" in data[-ZIP_TAIL:]:
        raise AttachmentRefused(HIDDEN_CONTENT)


def _trailing(data: bytes, end: int) -> None:
    """After an image's end marker: nothing but zero padding (some cameras add it)."""
    rest = data[end:]
    if rest.strip(b"\x00"):
        if _hidden(rest, pdf_marker=True):
            raise AttachmentRefused(HIDDEN_CONTENT)
        raise AttachmentRefused(TRAILING_PICTURE)


# --- PNG ------------------------------------------------------------------------------


def _png_check(data: bytes) -> None:
    """Walk the chunks: lengths, CRCs, IHDR first, IEND last, nothing after it. Metadata
    chunks (everything but the pixels) are searched for other formats."""
    pos = 8
    first = True
    width = height = 0
    while True:
        if pos + 12 > len(data):
            raise AttachmentRefused(DAMAGED)
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data) or not ctype.isalpha():
            raise AttachmentRefused(DAMAGED)
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise AttachmentRefused(DAMAGED)
        if first:
            if ctype != b"IHDR" or length != 13:
                raise AttachmentRefused(DAMAGED)
            width, height = struct.unpack(">II", body[:8])
            if width == 0 or height == 0:
                raise AttachmentRefused(DAMAGED)
            if width * height > MAX_PIXELS:
                raise AttachmentRefused(TOO_MANY_PIXELS)
            first = False
        elif ctype not in (b"IDAT", b"fdAT") and _hidden(body, pdf_marker=True):
            raise AttachmentRefused(HIDDEN_CONTENT)
        pos = end
        if ctype == b"IEND":
            break
    _trailing(data, pos)


# --- JPEG -----------------------------------------------------------------------------

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers (size)


def _jpeg_check(data: bytes) -> None:
    """Walk the segments to the end-of-image marker. APPn and COM segments (EXIF, XMP,
    comments) are searched for other formats; the frame header gives the size in
    pixels before anything is decoded; nothing may follow the end marker."""
    pos = 2
    n = len(data)
    saw_frame = False
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise AttachmentRefused(DAMAGED)
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise AttachmentRefused(DAMAGED)
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            continue
        if pos + 2 > n:
            raise AttachmentRefused(DAMAGED)
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > n:
            raise AttachmentRefused(DAMAGED)
        body = data[pos + 2 : pos + length]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            if _hidden(body, pdf_marker=True):
                raise AttachmentRefused(HIDDEN_CONTENT)
        elif marker in _SOF_MARKERS:
            if len(body) < 5:
                raise AttachmentRefused(DAMAGED)
            height, width = struct.unpack(">HH", body[1:5])
            if width * height > MAX_PIXELS:
                raise AttachmentRefused(TOO_MANY_PIXELS)
            saw_frame = True
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            while True:
                nxt = data.find(b"\xff", pos)
                if nxt == -1 or nxt + 1 >= n:
                    raise AttachmentRefused(DAMAGED)
                following = data[nxt + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos = nxt + 1 if following == 0xFF else nxt + 2
                    continue
                pos = nxt
                break
    if not saw_frame:
        raise AttachmentRefused(DAMAGED)
    _trailing(data, pos)


# --- re-encoding (Pillow) -------------------------------------------------------------


def _reencode(data: bytes, kind: Kind) -> bytes:
    """Decode the pixels and write a new file from them alone. Orientation from EXIF is
    applied first and colours are converted to sRGB from an embedded ICC profile, so the
    picture looks the same without the metadata that is then left behind."""
    from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(
                io.BytesIO(data), formats=["PNG" if kind is Kind.PNG else "JPEG"]
            ) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise AttachmentRefused(TOO_MANY_PIXELS)
                im.load()
                image = ImageOps.exif_transpose(im)
                icc = im.info.get("icc_profile")
    except AttachmentRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AttachmentRefused(TOO_MANY_PIXELS) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise AttachmentRefused(DAMAGED) from None

    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if kind is Kind.JPEG:
        target = "L" if image.mode in ("L", "1") else "RGB"
    elif image.mode in ("L", "1", "I", "I;16"):
        target = "L"
    else:
        target = "RGBA" if has_alpha else "RGB"
    if icc and target in ("RGB", "RGBA") and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            image = ImageCms.profileToProfile(
                image,
                source,
                ImageCms.createProfile("sRGB"),
                outputMode="RGBA" if image.mode == "RGBA" else "RGB",
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unreadable profile: the pixels as they are
    if image.mode.startswith("I"):  # 16-bit grey: scale to 8 bits
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    clean = image.convert(target)
    clean.info = {}  # nothing carried over: no EXIF, ICC, text chunks, comments
    out = io.BytesIO()
    if kind is Kind.PNG:
        clean.save(out, format="PNG", optimize=False, compress_level=6)
    else:
        clean.save(out, format="JPEG", quality=90)
    return out.getvalue()


# --- PDF ------------------------------------------------------------------------------

_STREAM = re.compile(rb"\bstream(?:\r\n|\n|\r)(.*?)\bendstream\b", re.DOTALL)
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# Names whose presence anywhere means code, actions or files inside the PDF.
ACTIVE_NAMES = frozenset(
    {
        "/JS",
        "/JavaScript",
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/FileAttachment",
        "/RichMedia",
        "/RichMediaExecute",
        "/XFA",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
        "/Rendition",
        "/Sound",
        "/Movie",
    }
)
_ACTIVE_RAW = re.compile(
    rb"/(?:"
    + b"|".join(re.escape(n[1:].encode()) for n in sorted(ACTIVE_NAMES, key=len, reverse=True))
    + rb")(?![A-Za-z0-9#_.-])"
)
MAX_PDF_OBJECTS = 100_000


def _pdf_check(data: bytes) -> None:
    eof = data.rfind(b"%%EOF")
    if eof == -1:
        raise AttachmentRefused(DAMAGED)
    if data[eof + 5 :].strip(b" \t\r\n\x0c\x00"):
        rest = data[eof + 5 :]
        if _hidden(rest, pdf_marker=False):
            raise AttachmentRefused(HIDDEN_CONTENT)
        raise AttachmentRefused(TRAILING_DOCUMENT)
    # Outside its (compressed) streams a PDF is text: no other format belongs there, and
    # the names of active content are found even when spelled with #xx escapes.
    outside = _STREAM.sub(b"stream endstream", data)
    if _hidden(outside, pdf_marker=False):
        raise AttachmentRefused(HIDDEN_CONTENT)
    unescaped = _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), outside)
    if b"/Encrypt" in unescaped:
        raise AttachmentRefused(PDF_ENCRYPTED)
    if _ACTIVE_RAW.search(unescaped):
        raise AttachmentRefused(PDF_ACTIVE)
    _pdf_parse(data)


def _pdf_parse(data: bytes) -> None:
    """Every object pypdf can reach (the cross-reference table and object streams, which
    the text scan above cannot see into), searched for active content."""
    import logging

    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise AttachmentRefused(PDF_ENCRYPTED)
        if len(reader.pages) < 1:
            raise AttachmentRefused(DAMAGED)
        root = reader.trailer["/Root"].get_object()
        open_action = root.get("/OpenAction")
        if open_action is not None:
            action = open_action.get_object()
            if isinstance(action, DictionaryObject) and action.get("/S") != "/GoTo":
                raise AttachmentRefused(PDF_ACTIVE)
        numbers: set[tuple[int, int]] = set()
        for generation, entries in reader.xref.items():
            numbers.update((num, generation) for num in entries)
        numbers.update((num, 0) for num in reader.xref_objStm)
        if len(numbers) > MAX_PDF_OBJECTS:
            raise AttachmentRefused(DAMAGED)
        seen = 0
        for num, generation in sorted(numbers):
            obj = reader.get_object(IndirectObject(num, generation, reader))
            stack = [obj]
            while stack:
                item = stack.pop()
                seen += 1
                if seen > MAX_PDF_OBJECTS * 10:
                    raise AttachmentRefused(DAMAGED)
                if isinstance(item, DictionaryObject):
                    for key, value in item.items():
                        if key in ACTIVE_NAMES:
                            raise AttachmentRefused(PDF_ACTIVE)
                        if isinstance(value, NameObject) and value in ACTIVE_NAMES:
                            raise AttachmentRefused(PDF_ACTIVE)
                        if isinstance(value, (DictionaryObject, ArrayObject)):
                            stack.append(value)
                elif isinstance(item, ArrayObject):
                    for value in item:
                        if isinstance(value, NameObject) and value in ACTIVE_NAMES:
                            raise AttachmentRefused(PDF_ACTIVE)
                        if isinstance(value, (DictionaryObject, ArrayObject)):
                            stack.append(value)
    except AttachmentRefused:
        raise
    except Exception:  # pypdf raises many kinds on malformed input: all mean "damaged"
        raise AttachmentRefused(DAMAGED) from None


# --- file names -----------------------------------------------------------------------

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_ALLOWED_PUNCTUATION = frozenset(" -_.,()+&'")


def safe_name(name: str, kind: Kind) -> str:
    """The name to store and offer on download: no folders, control or invisible
    characters (such as right-to-left overrides that disguise "gpj.exe" as "exe.jpg"),
    nothing a file system treats specially, and an extension that says what it is."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    kept = []
    for ch in base:
        category = unicodedata.category(ch)
        if category[0] in "LNM" or ch in _ALLOWED_PUNCTUATION:
            kept.append(ch)
        elif category.startswith("Z") or ch == "\t":
            kept.append(" ")
        elif category[0] in "PS":
            kept.append("_")
        # Cc (control), Cf (format: bidi overrides, zero-width), Co, Cs, Cn: dropped
    cleaned = " ".join("".join(kept).split())
    stem, dot, ext = cleaned.rpartition(".")
    if not dot:
        stem, ext = cleaned, ""
    extension = "." + ext.lower()
    if extension not in EXTENSIONS[kind]:
        stem = cleaned if not dot or len(ext) > 5 else stem
        extension = EXTENSIONS[kind][0]
    stem = stem.strip(" .")[:NAME_MAX].strip(" .") or "attachment"
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = f"{stem}_file"
    return stem + extension
