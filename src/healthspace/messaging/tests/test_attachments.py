"""Attachments are PDF, PNG or JPEG by content, with nothing hidden inside; images are
re-encoded without their metadata; names are made safe. Each hostile file is built here,
as bytes, by the test."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image
from pypdf import PdfWriter

from healthspace.messaging import attachments as a
from healthspace.messaging.attachments import Kind, attachment_check
from healthspace.messaging.tests import files

MAX = 5 * 1024 * 1024


def check(data: bytes, name: str = "file"):
    return attachment_check(name=name, data=data, max_bytes=MAX)


def _pypdf(**change) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if "attachment" in change:
        writer.add_attachment("notes.txt", b"hidden file")
    if "password" in change:
        writer.encrypt(change["password"])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _jpeg_with_segment(marker: int, body: bytes) -> bytes:
    data = files.jpeg()
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    return data[:2] + segment + data[2:]


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(files.jpeg())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _png_bad_crc() -> bytes:
    data = bytearray(files.png())
    data[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(data)


REFUSED = [
    # (what, name, bytes, message)
    ("renamed Windows executable", "report.pdf", files.WINDOWS_EXECUTABLE, a.WRONG_TYPE),
    ("renamed Linux executable", "scan.jpg", files.LINUX_EXECUTABLE, a.WRONG_TYPE),
    ("SVG named .png", "chart.png", files.SVG, a.WRONG_TYPE),
    ("HTML named .jpg", "photo.jpg", files.HTML, a.WRONG_TYPE),
    ("ZIP named .pdf", "letter.pdf", files.zip_archive(), a.WRONG_TYPE),
    ("PDF header not at the start", "letter.pdf", b"junk\n" + files.pdf(), a.WRONG_TYPE),
    ("empty file", "empty.pdf", b"", a.EMPTY),
    ("PNG with a ZIP appended", "photo.png", files.png() + files.zip_archive(), a.HIDDEN_CONTENT),
    ("JPEG with a PDF appended", "photo.jpg", files.jpeg() + files.pdf(), a.HIDDEN_CONTENT),
    (
        "JPEG/PDF polyglot (PDF header in a comment)",
        "photo.jpg",
        _jpeg_with_segment(0xFE, files.pdf()),
        a.HIDDEN_CONTENT,
    ),
    ("JPEG with a ZIP in an APP segment", "photo.jpg", _jpeg_with_segment(0xE9, files.zip_archive()), a.HIDDEN_CONTENT),
    ("JPEG with a script in its comment", "photo.jpg", _jpeg_with_segment(0xFE, b"<script>alert(1)</script>"), a.HIDDEN_CONTENT),
    ("PNG with HTML in a text chunk", "photo.png", files.png_with_chunk(b"tEXt", b"Comment\x00<html><body>x"), a.HIDDEN_CONTENT),
    ("PNG with a ZIP in a private chunk", "photo.png", files.png_with_chunk(b"prVt", files.zip_archive()), a.HIDDEN_CONTENT),
    ("PNG with an executable in a chunk", "photo.png", files.png_with_chunk(b"prVt", files.LINUX_EXECUTABLE), a.HIDDEN_CONTENT),
    ("PNG with data after IEND", "photo.png", files.png() + b"extra bytes", a.TRAILING_PICTURE),
    ("JPEG with data after EOI", "photo.jpg", files.jpeg() + b"extra bytes", a.TRAILING_PICTURE),
    ("PDF with JavaScript on opening", "letter.pdf", files.pdf(b"/OpenAction 5 0 R ", (b"<< /S /JavaScript /JS (app.alert(1)) >>",)), a.PDF_ACTIVE),
    ("PDF with JavaScript spelt with #xx escapes", "letter.pdf", files.pdf(b"/OpenAction 5 0 R ", (b"<< /S /Java#53cript /J#53 (app.alert(1)) >>",)), a.PDF_ACTIVE),
    ("PDF with JavaScript only in a compressed object stream", "letter.pdf", files.pdf_with_hidden_javascript(), a.PDF_ACTIVE),
    ("PDF that launches a program", "letter.pdf", files.pdf(b"/OpenAction << /S /Launch /F (cmd.exe) >> "), a.PDF_ACTIVE),
    ("PDF with an OpenAction that submits a form", "letter.pdf", files.pdf(b"/OpenAction << /S /SubmitForm /F (https://x.example) >> "), a.PDF_ACTIVE),
    ("PDF with an embedded file", "letter.pdf", _pypdf(attachment=True), a.PDF_ACTIVE),
    ("PDF with an XFA form", "letter.pdf", files.pdf(b"/AcroForm << /XFA 5 0 R >> ", (b"<< /Length 0 >>\nstream\n\nendstream",)), a.PDF_ACTIVE),
    ("password-protected PDF", "letter.pdf", _pypdf(password="secret"), a.PDF_ENCRYPTED),
    ("PDF with bytes after %%EOF", "letter.pdf", files.pdf() + b"<not whitespace>", a.TRAILING_DOCUMENT),
    ("PDF with a ZIP after %%EOF", "letter.pdf", files.pdf() + files.zip_archive(), a.HIDDEN_CONTENT),
    ("PDF with HTML outside its streams", "letter.pdf", files.pdf(b"/Title (<html><script>x</script>) "), a.HIDDEN_CONTENT),
    ("PDF without %%EOF", "letter.pdf", files.pdf().replace(b"%%EOF", b""), a.DAMAGED),
    ("PDF that does not parse", "letter.pdf", b"%PDF-1.7\nnothing here\n%%EOF\n", a.DAMAGED),
    ("truncated PNG", "photo.png", files.png()[:-20], a.DAMAGED),
    ("PNG with a wrong checksum", "photo.png", _png_bad_crc(), a.DAMAGED),
    ("truncated JPEG", "photo.jpg", files.jpeg()[:-40], a.DAMAGED),
    ("decompression bomb PNG (100,000 x 100,000)", "bomb.png", files.png_bomb(), a.TOO_MANY_PIXELS),
    ("decompression bomb JPEG (65,000 x 65,000)", "bomb.jpg", _jpeg_claiming(65_000, 65_000), a.TOO_MANY_PIXELS),
]  # fmt: skip


@pytest.mark.parametrize(("what", "name", "data", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_hostile_or_broken_file_is_refused_with_a_clear_message(what, name, data, message):
    with pytest.raises(a.AttachmentRefused) as refused:
        check(data, name)
    assert str(refused.value) == message


def test_an_oversize_file_is_refused_whatever_it_is():
    data = files.pdf() + b" " * 100
    with pytest.raises(a.AttachmentRefused) as refused:
        attachment_check(name="big.pdf", data=data, max_bytes=len(data) - 1)
    assert str(refused.value) == a.too_big_message(len(data) - 1)
    assert attachment_check(name="big.pdf", data=data, max_bytes=len(data)).kind is Kind.PDF


@pytest.mark.parametrize(
    ("name", "data", "kind", "stored_name"),
    [
        ("letter.pdf", files.pdf(), Kind.PDF, "letter.pdf"),
        ("letter.pdf", files.pdf(b"/OpenAction [3 0 R /Fit] "), Kind.PDF, "letter.pdf"),
        ("letter.pdf", _pypdf(), Kind.PDF, "letter.pdf"),
        ("letter.pdf", files.pdf() + b"\r\n  \n", Kind.PDF, "letter.pdf"),
        ("rash.png", files.png(), Kind.PNG, "rash.png"),
        ("rash.PNG", files.png(), Kind.PNG, "rash.png"),
        ("rash.jpeg", files.jpeg(), Kind.JPEG, "rash.jpeg"),
        ("rash.jpg", files.jpeg() + b"\x00\x00", Kind.JPEG, "rash.jpg"),  # camera padding
        ("rash.png", files.jpeg(), Kind.JPEG, "rash.jpg"),  # the content decides
        ("scan", files.pdf(), Kind.PDF, "scan.pdf"),
    ],
)
def test_pdf_png_and_jpeg_are_accepted_by_content(name, data, kind, stored_name):
    checked = check(data, name)
    assert checked.kind is kind
    assert checked.name == stored_name
    assert a.detect(checked.data) is kind


def test_a_pdf_is_stored_as_sent():
    data = files.pdf()
    assert check(data, "letter.pdf").data == data


def test_a_photo_is_re_encoded_without_its_gps_position_or_camera_details():
    original = files.jpeg_with_gps()
    assert b"PhoneMaker" in original and Image.open(io.BytesIO(original)).getexif().get(0x8825)
    stored = check(original, "rash.jpg").data
    assert b"PhoneMaker" not in stored and b"Exif" not in stored
    image = Image.open(io.BytesIO(stored))
    assert not image.getexif()
    assert image.size == (40, 30)


def test_a_photo_keeps_its_orientation_when_its_exif_is_dropped():
    image = Image.new("RGB", (40, 20), (200, 200, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    stored = Image.open(io.BytesIO(check(out.getvalue(), "p.jpg").data))
    assert stored.size == (20, 40)


def test_png_text_chunks_are_not_kept():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Citizen, 1 High Street")
    stored = check(files.png(pnginfo=info), "p.png").data
    assert b"Jane Citizen" not in stored
    assert Image.open(io.BytesIO(stored)).size == (40, 30)


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA", "P", "1", "I;16"])
def test_pngs_of_every_common_kind_re_encode(mode):
    image = Image.new(mode, (16, 8))
    out = io.BytesIO()
    image.save(out, "PNG")
    stored = Image.open(io.BytesIO(check(out.getvalue(), "p.png").data))
    assert stored.size == (16, 8)
    assert stored.mode in ("RGB", "RGBA", "L")


def test_a_cmyk_jpeg_becomes_rgb():
    out = io.BytesIO()
    Image.new("CMYK", (10, 10), (0, 100, 100, 0)).save(out, "JPEG")
    assert Image.open(io.BytesIO(check(out.getvalue(), "p.jpg").data)).mode == "RGB"


@pytest.mark.parametrize(
    ("given", "kind", "safe"),
    [
        ("../../etc/passwd.pdf", Kind.PDF, "passwd.pdf"),
        ("C:\\Users\\me\\Report.PDF", Kind.PDF, "Report.pdf"),
        ("photo\u202egpj.exe", Kind.JPEG, "photogpj.jpg"),  # right-to-left override gone
        ("invoice.pdf.exe", Kind.PDF, "invoice.pdf.pdf"),
        ("a\x00b\x1fc.png", Kind.PNG, "abc.png"),
        ("zero\u200bwidth.png", Kind.PNG, "zerowidth.png"),
        ("résumé.pdf", Kind.PDF, "résumé.pdf"),
        ("ﬁle.pdf", Kind.PDF, "file.pdf"),  # NFKC: the ligature becomes letters
        ("my <scan>.pdf", Kind.PDF, "my _scan_.pdf"),
        ("  .hidden.pdf", Kind.PDF, "hidden.pdf"),
        ("", Kind.PDF, "attachment.pdf"),
        ("....", Kind.PNG, "attachment.png"),
        ("CON.pdf", Kind.PDF, "CON_file.pdf"),
        ("x" * 300 + ".jpg", Kind.JPEG, "x" * a.NAME_MAX + ".jpg"),
        ("v1.2 clinic letter", Kind.PDF, "v1.2 clinic letter.pdf"),
    ],
)
def test_file_names_are_made_safe_with_an_extension_that_matches_the_content(given, kind, safe):
    assert a.safe_name(given, kind) == safe


def test_sizes_read_as_people_say_them():
    assert a.size_words(5 * 1024 * 1024) == "5 MB"
    assert a.size_words(1536 * 1024) == "1.5 MB"
    assert a.size_words(230 * 1024) == "230 KB"
    assert a.size_words(10) == "1 KB"
